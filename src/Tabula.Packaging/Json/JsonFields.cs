using System.Diagnostics.CodeAnalysis;
using System.Text.Json;

namespace Tabula.Packaging;

/// <summary>
/// Reads fields of a JSON object with errors that name the field and say what was expected.
/// Upstream rule for configs: an omitted key and an explicit null mean the same thing.
/// </summary>
internal readonly struct JsonFields(JsonElement obj, string what)
{
    public JsonElement Object => obj;

    /// <summary>Parses <paramref name="utf8"/> as one JSON object, with size and depth limits.</summary>
    public static JsonDocument ParseObject(ReadOnlySpan<byte> utf8, int maxBytes, string what)
    {
        PackageFormatException.ThrowIfTooLarge(utf8.Length, maxBytes, what);
        // The reader only checks UTF-8 when a string is decoded, which would surface later as
        // InvalidOperationException; check the whole input once, up front.
        if (!System.Text.Unicode.Utf8.IsValid(utf8))
            PackageFormatException.Throw(FormatError.InvalidJson, $"{what} is not valid UTF-8");
        JsonDocument document;
        try
        {
            ThrowIfUnpairedSurrogate(utf8, what);
            var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = Limits.MaxJsonDepth });
            document = JsonDocument.ParseValue(ref reader);
            // ParseValue stops after one value; anything but whitespace after it is an error.
            if (reader.Read())
                PackageFormatException.Throw(FormatError.InvalidJson, $"{what}: unexpected data after the JSON object");
        }
        catch (JsonException e)
        {
            return PackageFormatException.Throw<JsonDocument>(FormatError.InvalidJson, $"{what} is not valid JSON: {e.Message}", e);
        }
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            var kind = document.RootElement.ValueKind;
            document.Dispose();
            PackageFormatException.Throw(FormatError.InvalidJson, $"{what} must be a JSON object, not {Describe(kind)}");
        }
        return document;
    }

    // A string or property name may escape half a surrogate pair ("\ud800"): valid JSON in valid UTF-8, but decoding
    // it (GetString, a property's Name, and TryGetProperty, which decodes escaped names while it looks) throws
    // InvalidOperationException. afl found it through RelayConfig; the same input broke every parser here. Each escaped
    // string is decoded once, up front, so the fields are read without that case.
    static void ThrowIfUnpairedSurrogate(ReadOnlySpan<byte> utf8, string what)
    {
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = Limits.MaxJsonDepth });
        while (reader.Read())
        {
            if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName) || !reader.ValueIsEscaped)
                continue;
            try { _ = reader.GetString(); }
            catch (InvalidOperationException e)
            {
                PackageFormatException.Throw(FormatError.InvalidJson, $"{what} is not valid JSON: a string escapes an unpaired surrogate", e);
            }
        }
    }

    public bool IsPresent(string name) => obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    public JsonElement? Get(string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public string? OptionalString(string name)
    {
        if (Get(name) is not { } v) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : Wrong<string>(name, "a string", v);
    }

    public string RequiredString(string name) =>
        OptionalString(name) ?? Missing<string>(name, "a string");

    public long? OptionalInteger(string name)
    {
        if (Get(name) is not { } v) return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long n) ? n : Wrong<long>(name, "an integer", v);
    }

    public long RequiredInteger(string name) =>
        OptionalInteger(name) ?? Missing<long>(name, "an integer");

    public bool? OptionalBool(string name)
    {
        if (Get(name) is not { } v) return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => Wrong<bool>(name, "true or false", v),
        };
    }

    /// <summary>An array of strings, or null when omitted/null. Elements must be strings.</summary>
    public IReadOnlyList<string>? OptionalStringArray(string name, int maxItems)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Array) return Wrong<IReadOnlyList<string>>(name, "an array of strings", v);
        int count = v.GetArrayLength();
        if (count > maxItems)
            PackageFormatException.Throw(FormatError.TooLarge, $"{what}: field \"{name}\" has {count} entries, the limit is {maxItems}");
        var items = new List<string>(count);
        int i = 0;
        foreach (var item in v.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
                PackageFormatException.Throw(FormatError.InvalidField, $"{what}: field \"{name}[{i}]\" must be a string, not {Describe(item.ValueKind)}");
            items.Add(item.GetString()!);
            i++;
        }
        return items;
    }

    [DoesNotReturn]
    public T Missing<T>(string name, string expected) =>
        PackageFormatException.Throw<T>(FormatError.InvalidField, $"{what}: field \"{name}\" is required ({expected})");

    [DoesNotReturn]
    public T Wrong<T>(string name, string expected, JsonElement actual) =>
        PackageFormatException.Throw<T>(FormatError.InvalidField, $"{what}: field \"{name}\" must be {expected}, not {Describe(actual.ValueKind)}");

    [DoesNotReturn]
    public void Invalid(string name, string why) =>
        PackageFormatException.Throw(FormatError.InvalidField, $"{what}: field \"{name}\" {why}");

    public static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };
}

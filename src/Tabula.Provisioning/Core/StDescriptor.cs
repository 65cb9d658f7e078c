using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tabula.Provisioning.Core;

/// <summary>
/// The four fields of a System Transparency descriptor that the server reads and rewrites. The descriptor is not
/// signed (formats §1.2, §7), so the server may point <c>os_pkg_url</c> at the content-addressed archive; the
/// certificates and signatures are copied through unchanged, in order.
/// </summary>
public sealed record StDescriptor(
    [property: JsonPropertyName("version")] int Version,
    [property: JsonPropertyName("os_pkg_url")] string? OsPkgUrl,
    [property: JsonPropertyName("certificates")] IReadOnlyList<string>? Certificates,
    [property: JsonPropertyName("signatures")] IReadOnlyList<string>? Signatures)
{
    /// <summary>Parses and checks the shape stboot requires: version 1, parallel arrays of equal length.</summary>
    public static StDescriptor Parse(ReadOnlySpan<byte> json)
    {
        StDescriptor? d;
        try
        {
            d = JsonSerializer.Deserialize(json, ProvisioningJsonContext.Default.StDescriptor);
        }
        catch (JsonException e)
        {
            throw new ProvisioningException(ProvisioningError.MalformedDescriptor,
                $"descriptor is not valid JSON of the expected shape: {e.Message}", e);
        }
        if (d is null)
            throw new ProvisioningException(ProvisioningError.MalformedDescriptor, "descriptor is JSON null");
        if (d.Version != 1)
            throw new ProvisioningException(ProvisioningError.MalformedDescriptor,
                $"descriptor version is {d.Version}, expected 1");
        if ((d.Certificates?.Count ?? 0) != (d.Signatures?.Count ?? 0))
            throw new ProvisioningException(ProvisioningError.MalformedDescriptor,
                "descriptor certificates and signatures differ in length");
        return d;
    }

    /// <summary>Writes the descriptor as upstream tools do: 2-space indent, key order version, os_pkg_url,
    /// certificates, signatures; <c>null</c> arrays stay <c>null</c>; no trailing newline.</summary>
    public byte[] ToJson()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("version", Version);
            w.WriteString("os_pkg_url", OsPkgUrl ?? "");
            WriteArray(w, "certificates", Certificates);
            WriteArray(w, "signatures", Signatures);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    static void WriteArray(Utf8JsonWriter w, string name, IReadOnlyList<string>? items)
    {
        if (items is null)
        {
            w.WriteNull(name);
            return;
        }
        w.WriteStartArray(name);
        foreach (string item in items)
            w.WriteStringValue(item);
        w.WriteEndArray();
    }
}

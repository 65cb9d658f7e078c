using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tabula.Fleet.Protocol;

/// <summary>Why a relay configuration was refused.</summary>
public enum RelayConfigError
{
    /// <summary>Over <see cref="RelayConfig.MaxBytes"/>.</summary>
    TooLarge,
    /// <summary>Not a JSON object, or a field of the wrong type.</summary>
    Malformed,
    /// <summary>A version other than <see cref="RelayConfig.CurrentVersion"/>.</summary>
    UnsupportedVersion,
    /// <summary>The fleet URL is not a plain https base URL with an IP address or DNS name as host.</summary>
    InvalidFleetUrl,
}

/// <summary>A relay configuration that cannot be written or read; the message names the field, never a secret.</summary>
public sealed class RelayConfigException(RelayConfigError reason, string message) : Exception(message)
{
    /// <summary>What is wrong.</summary>
    public RelayConfigError Reason { get; } = reason;
}

/// <summary>
/// <c>/etc/tabula/relay.json</c> of the relay OS (its path is Tabula.Packaging's <c>InitramfsLayout.RelayConfig</c>), inside the signed initramfs (the signatures cover it): where the agent
/// finds its fleet controller, <c>{"version":1,"fleet_url":"https://…"}</c>. The image builder writes it with
/// <see cref="Create"/> and <see cref="ToJson"/>, the agent reads it with <see cref="Parse"/>: one validation on both
/// sides, so an image that builds is one the agent accepts. Valid by construction.
/// </summary>
public sealed record RelayConfig
{
    // Room for what comes next (issue 15, relay egress): the upstream resolvers of the in-tunnel DNS, the private
    // ranges the relay refuses to forward to, and egress addresses. They join as optional fields of version 1 (an older
    // agent skips unknown fields), each validated here in one place, for both the writer and the reader.

    /// <summary>The only version written and read.</summary>
    public const int CurrentVersion = 1;

    /// <summary>Largest file read. Arbitrary limit, may be increased.</summary>
    public const int MaxBytes = 64 * 1024;

    /// <summary>Longest fleet URL accepted. Arbitrary limit, may be increased.</summary>
    public const int MaxUrlLength = 2048;

    RelayConfig(Uri fleetUrl) => FleetUrl = fleetUrl;

    /// <summary>Always <see cref="CurrentVersion"/>.</summary>
    public int Version => CurrentVersion;

    /// <summary>
    /// The controller's base URL: https, a host that is an IP address or a DNS name (a relay that takes its address by
    /// DHCP resolves its controller by name), an optional port and path, no user info, no query or fragment.
    /// </summary>
    public Uri FleetUrl { get; }

    /// <summary>A configuration for <paramref name="fleetUrl"/>; <see cref="RelayConfigException"/> unless it is a plain https base URL.</summary>
    public static RelayConfig Create(string fleetUrl)
    {
        ArgumentNullException.ThrowIfNull(fleetUrl);
        return new RelayConfig(ValidateFleetUrl(fleetUrl));
    }

    /// <summary>Reads the file's bytes with the same validation as <see cref="Create"/>. Throws <see cref="RelayConfigException"/>.</summary>
    public static RelayConfig Parse(ReadOnlySpan<byte> json)
    {
        if (json.Length > MaxBytes)
            throw new RelayConfigException(RelayConfigError.TooLarge, $"is {json.Length} bytes; the limit is {MaxBytes}");
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 16 });
            using var document = JsonDocument.ParseValue(ref reader);
            var top = document.RootElement;
            if (top.ValueKind != JsonValueKind.Object)
                throw new RelayConfigException(RelayConfigError.Malformed, "is not a JSON object");
            if (!top.TryGetProperty("version", out var version) || version.ValueKind != JsonValueKind.Number
                || !version.TryGetInt32(out int v) || v != CurrentVersion)
                throw new RelayConfigException(RelayConfigError.UnsupportedVersion, $"version must be {CurrentVersion}");
            if (!top.TryGetProperty("fleet_url", out var url) || url.ValueKind != JsonValueKind.String)
                throw new RelayConfigException(RelayConfigError.Malformed, "fleet_url must be a string");
            return new RelayConfig(ValidateFleetUrl(url.GetString()!));
        }
        catch (JsonException e)
        {
            throw new RelayConfigException(RelayConfigError.Malformed, $"invalid JSON at line {e.LineNumber + 1}");
        }
        catch (InvalidOperationException)
        {
            // A string or property name that escapes half a surrogate pair ("\ud800") is valid JSON, but decoding it
            // (GetString, and TryGetProperty, which decodes escaped names while it looks) throws (afl found it).
            throw new RelayConfigException(RelayConfigError.Malformed, "a string escapes an unpaired surrogate");
        }
    }

    /// <summary>Compact UTF-8 JSON, keys in the order version, fleet_url, newline-terminated. Same value, same bytes.</summary>
    public byte[] ToJson() =>
        [.. JsonSerializer.SerializeToUtf8Bytes(new Wire(Version, FleetUrl.OriginalString), RelayConfigJson.Default.Wire), (byte)'\n'];

    static Uri ValidateFleetUrl(string text)
    {
        if (text.Length > MaxUrlLength)
            throw new RelayConfigException(RelayConfigError.InvalidFleetUrl, $"fleet_url is longer than {MaxUrlLength} characters");
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps || uri.Host.Length == 0)
            throw new RelayConfigException(RelayConfigError.InvalidFleetUrl, "fleet_url must be an https:// URL: https://HOST[:PORT][/PATH]");
        // The file goes into a signed, widely copied package: a password in it would be published.
        if (uri.UserInfo.Length > 0)
            throw new RelayConfigException(RelayConfigError.InvalidFleetUrl, "fleet_url must be an https:// URL without credentials (user info)");
        if (uri.Query.Length > 0 || uri.Fragment.Length > 0)
            throw new RelayConfigException(RelayConfigError.InvalidFleetUrl, "fleet_url must not have a query or a fragment (it is a base URL)");
        bool literal = uri.HostNameType is UriHostNameType.IPv4 or UriHostNameType.IPv6;
        if (!literal && (uri.HostNameType != UriHostNameType.Dns || !IsDnsName(uri.Host)))
            throw new RelayConfigException(RelayConfigError.InvalidFleetUrl,
                "fleet_url host must be an IP address or a DNS name (ASCII letters, digits and hyphens, dot-separated labels of 1-63)");
        return uri;
    }

    /// <summary>RFC 1123 host name: ASCII labels of letters, digits and inner hyphens, 1-63 each, 253 in all, not all-numeric at the end.</summary>
    static bool IsDnsName(string host)
    {
        string name = host.EndsWith('.') ? host[..^1] : host;
        if (name.Length is 0 or > 253) return false;
        string[] labels = name.Split('.');
        foreach (string label in labels)
            if (label.Length is 0 or > 63 || label[0] == '-' || label[^1] == '-' || !label.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
                return false;
        return !labels[^1].All(char.IsAsciiDigit);   // "1.2.3.999" is a bad address, not a name
    }

    internal sealed record Wire(int Version, string FleetUrl);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(RelayConfig.Wire))]
internal sealed partial class RelayConfigJson : JsonSerializerContext;

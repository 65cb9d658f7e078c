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
    /// <summary>The list of fleet URLs is empty, too long, repeats a URL, or does not start with <c>fleet_url</c>.</summary>
    InvalidFleetUrlList,
}

/// <summary>A relay configuration that cannot be written or read; the message names the field, never a secret.</summary>
public sealed class RelayConfigException(RelayConfigError reason, string message) : Exception(message)
{
    /// <summary>What is wrong.</summary>
    public RelayConfigError Reason { get; } = reason;
}

/// <summary>
/// <c>/etc/tabula/relay.json</c> of the relay OS (its path is Tabula.Packaging's <c>InitramfsLayout.RelayConfig</c>), inside the signed initramfs (the signatures cover it): where the agent
/// finds its fleet controller, <c>{"version":1,"fleet_url":"https://…"}</c>, and with several controller instances
/// (issue 18) <c>{"version":1,"fleet_url":"https://a…","fleet_urls":["https://a…","https://b…"]}</c>: the list the agent
/// fails over through, in order, whose first entry is <c>fleet_url</c> (what an agent from before the list reads, so an old
/// and a new agent start at the same controller). The image builder writes it with
/// <see cref="Create(string)"/> and <see cref="ToJson"/>, the agent reads it with <see cref="Parse"/>: one validation on both
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

    /// <summary>Most controller URLs in one list. Arbitrary limit, may be increased: a relay tries them in turn, each with
    /// its own connect timeout, before it backs off.</summary>
    public const int MaxFleetUrls = 8;

    RelayConfig(IReadOnlyList<Uri> fleetUrls) => FleetUrls = fleetUrls;

    /// <summary>Always <see cref="CurrentVersion"/>.</summary>
    public int Version => CurrentVersion;

    /// <summary>
    /// The controller's base URL: https, a host that is an IP address or a DNS name (a relay that takes its address by
    /// DHCP resolves its controller by name), an optional port and path, no user info, no query or fragment.
    /// </summary>
    /// <remarks>The first of <see cref="FleetUrls"/>.</remarks>
    public Uri FleetUrl => FleetUrls[0];

    /// <summary>
    /// Every controller URL, in the order the agent tries them (1 to <see cref="MaxFleetUrls"/>, no repeats, each valid as
    /// <see cref="FleetUrl"/> is). All of them are held to the same pinned CA.
    /// </summary>
    public IReadOnlyList<Uri> FleetUrls { get; }

    /// <summary>A configuration for <paramref name="fleetUrl"/>; <see cref="RelayConfigException"/> unless it is a plain https base URL.</summary>
    public static RelayConfig Create(string fleetUrl)
    {
        ArgumentNullException.ThrowIfNull(fleetUrl);
        return new RelayConfig([ValidateFleetUrl(fleetUrl)]);
    }

    /// <summary>A configuration for several controller instances, tried in this order; the same checks per URL, and
    /// <see cref="RelayConfigError.InvalidFleetUrlList"/> for an empty or too long list or one that repeats a URL.</summary>
    public static RelayConfig Create(IReadOnlyList<string> fleetUrls)
    {
        ArgumentNullException.ThrowIfNull(fleetUrls);
        return new RelayConfig(ValidateFleetUrls(fleetUrls));
    }

    /// <summary>
    /// The one check of a list of controller URLs, shared with the host configuration's per-machine list (the relay
    /// agent's settings): 1 to <see cref="MaxFleetUrls"/> URLs, each a plain https base URL, none twice.
    /// </summary>
    public static IReadOnlyList<Uri> ValidateFleetUrls(IReadOnlyList<string> fleetUrls)
    {
        ArgumentNullException.ThrowIfNull(fleetUrls);
        if (fleetUrls.Count is 0 or > MaxFleetUrls)
            throw new RelayConfigException(RelayConfigError.InvalidFleetUrlList, $"fleet_urls must hold 1 to {MaxFleetUrls} URLs");
        var urls = new List<Uri>(fleetUrls.Count);
        foreach (string text in fleetUrls)
        {
            ArgumentNullException.ThrowIfNull(text);
            var url = ValidateFleetUrl(text);
            if (urls.Any(u => u.OriginalString == url.OriginalString))
                throw new RelayConfigException(RelayConfigError.InvalidFleetUrlList, "fleet_urls names a URL twice");
            urls.Add(url);
        }
        return urls;
    }

    /// <summary>Reads the file's bytes with the same validation as <see cref="Create(IReadOnlyList{string})"/>. Throws <see cref="RelayConfigException"/>.</summary>
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
            var first = ValidateFleetUrl(url.GetString()!);
            if (!top.TryGetProperty("fleet_urls", out var list) || list.ValueKind == JsonValueKind.Null)
                return new RelayConfig([first]);
            if (list.ValueKind != JsonValueKind.Array || list.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
                throw new RelayConfigException(RelayConfigError.Malformed, "fleet_urls must be an array of strings");
            if (list.GetArrayLength() > MaxFleetUrls)
                throw new RelayConfigException(RelayConfigError.InvalidFleetUrlList, $"fleet_urls must hold 1 to {MaxFleetUrls} URLs");
            var urls = ValidateFleetUrls([.. list.EnumerateArray().Select(e => e.GetString()!)]);
            // An agent from before the list reads fleet_url only: both must start at the same controller.
            if (urls[0].OriginalString != first.OriginalString)
                throw new RelayConfigException(RelayConfigError.InvalidFleetUrlList, "fleet_urls must start with fleet_url");
            return new RelayConfig(urls);
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

    /// <summary>
    /// Compact UTF-8 JSON, keys in the order version, fleet_url, fleet_urls (only with more than one URL, so a one-URL
    /// configuration has the bytes it had before the list), newline-terminated. Same value, same bytes.
    /// </summary>
    public byte[] ToJson() =>
        [.. JsonSerializer.SerializeToUtf8Bytes(new Wire(Version, FleetUrl.OriginalString,
            FleetUrls.Count > 1 ? [.. FleetUrls.Select(u => u.OriginalString)] : null), RelayConfigJson.Default.Wire), (byte)'\n'];

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

    internal sealed record Wire(int Version, string FleetUrl,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? FleetUrls);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(RelayConfig.Wire))]
internal sealed partial class RelayConfigJson : JsonSerializerContext;

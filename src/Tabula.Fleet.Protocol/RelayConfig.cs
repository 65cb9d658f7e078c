using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tabula.Fleet.Protocol;

/// <summary>
/// /etc/tabula/relay.json in the relay OS package: where the agent finds its fleet controller. Written by
/// <c>tabula image relay</c>, read by the agent; it sits inside the signed initramfs, so the controller URL and the
/// pinned CA (<see cref="FleetCaPath"/>) are covered by the package signatures. Shape: <c>{"version":1,"fleet_url":"https://…"}</c>.
/// Instances are valid by construction: <see cref="Create"/> and <see cref="Parse"/> check the URL.
/// </summary>
public sealed record RelayConfig
{
    /// <summary>The only version that exists.</summary>
    public const int CurrentVersion = 1;

    /// <summary>Where the image puts this file (absolute, in the relay OS).</summary>
    public const string Path = "/etc/tabula/relay.json";

    /// <summary>Where the image puts the CA certificates (PEM) the agent pins for the controller's TLS.</summary>
    public const string FleetCaPath = "/etc/tabula/fleet-ca.pem";

    /// <summary>Largest relay.json read. Arbitrary limit (the file holds one URL), may be increased.</summary>
    public const int MaxBytes = 16 << 10;

    /// <summary>Longest fleet URL accepted. Arbitrary limit, may be increased.</summary>
    public const int MaxUrlLength = 2048;

    RelayConfig(int version, string fleetUrl)
    {
        Version = version;
        FleetUrl = fleetUrl;
    }

    /// <summary>Always <see cref="CurrentVersion"/>.</summary>
    public int Version { get; }

    /// <summary>The controller's base URL: https, with a host, no user info, no query or fragment.</summary>
    public string FleetUrl { get; }

    /// <summary>A configuration for <paramref name="fleetUrl"/>, or <see cref="RelayConfigException"/> when it is not a usable https URL.</summary>
    public static RelayConfig Create(string fleetUrl)
    {
        ArgumentNullException.ThrowIfNull(fleetUrl);
        CheckFleetUrl(fleetUrl);
        return new RelayConfig(CurrentVersion, fleetUrl);
    }

    /// <summary>Parses and validates relay.json.</summary>
    public static RelayConfig Parse(ReadOnlySpan<byte> json)
    {
        if (json.Length > MaxBytes)
            RelayConfigException.Throw(RelayConfigError.TooLarge, $"relay.json has {json.Length} bytes (limit {MaxBytes})");
        Wire? wire = null;
        try { wire = JsonSerializer.Deserialize(json, RelayConfigJson.Default.Wire); }
        catch (JsonException e) { RelayConfigException.Throw(RelayConfigError.Malformed, $"relay.json: {e.Message}", e); }
        if (wire is null)
            RelayConfigException.Throw(RelayConfigError.Malformed, "relay.json: not a JSON object");
        if (wire.Version is null)
            RelayConfigException.Throw(RelayConfigError.Malformed, "relay.json: version is missing");
        if (wire.Version != CurrentVersion)
            RelayConfigException.Throw(RelayConfigError.UnsupportedVersion, $"relay.json: version {wire.Version} is not supported (only {CurrentVersion})");
        if (wire.FleetUrl is null)
            RelayConfigException.Throw(RelayConfigError.Malformed, "relay.json: fleet_url is missing");
        CheckFleetUrl(wire.FleetUrl);
        return new RelayConfig(CurrentVersion, wire.FleetUrl);
    }

    /// <summary>Compact UTF-8 JSON, keys in the order version, fleet_url, newline-terminated. Same value, same bytes.</summary>
    public byte[] ToJson()
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(new Wire(Version, FleetUrl), RelayConfigJson.Default.Wire);
        return [.. json, (byte)'\n'];
    }

    static void CheckFleetUrl(string url)
    {
        if (url.Length > MaxUrlLength)
            RelayConfigException.Throw(RelayConfigError.FleetUrlInvalid, $"fleet URL is longer than {MaxUrlLength} characters");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps || uri.Host.Length == 0)
            RelayConfigException.Throw(RelayConfigError.FleetUrlInvalid, $"fleet URL must be https://HOST[:PORT][/PATH], got \"{url}\"");
        // The file goes into a signed, widely copied package: a password in it would be published.
        if (uri.UserInfo.Length > 0)
            RelayConfigException.Throw(RelayConfigError.FleetUrlInvalid, "fleet URL must not carry user info (credentials)");
        if (uri.Query.Length > 0 || uri.Fragment.Length > 0)
            RelayConfigException.Throw(RelayConfigError.FleetUrlInvalid, "fleet URL must not have a query or a fragment (it is a base URL)");
    }

    internal sealed record Wire(int? Version, string? FleetUrl);
}

/// <summary>Why relay.json or a fleet URL was refused.</summary>
public enum RelayConfigError
{
    /// <summary>Larger than <see cref="RelayConfig.MaxBytes"/>.</summary>
    TooLarge,
    /// <summary>Not a JSON object with the expected fields and types.</summary>
    Malformed,
    /// <summary>A version other than <see cref="RelayConfig.CurrentVersion"/>.</summary>
    UnsupportedVersion,
    /// <summary>The fleet URL is not https://HOST[:PORT][/PATH] without credentials, query or fragment.</summary>
    FleetUrlInvalid,
}

/// <summary>relay.json or a fleet URL is unusable; <see cref="Reason"/> says how.</summary>
public sealed class RelayConfigException : Exception
{
    RelayConfigException(RelayConfigError reason, string message, Exception? inner) : base(message, inner) => Reason = reason;

    /// <summary>What was wrong.</summary>
    public RelayConfigError Reason { get; }

    [DoesNotReturn]
    internal static void Throw(RelayConfigError reason, string message, Exception? inner = null) =>
        throw new RelayConfigException(reason, message, inner);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow, MaxDepth = 4)]
[JsonSerializable(typeof(RelayConfig.Wire))]
internal sealed partial class RelayConfigJson : JsonSerializerContext;

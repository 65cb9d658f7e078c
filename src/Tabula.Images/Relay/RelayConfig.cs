using System.Text.Json;
using System.Text.Json.Serialization;
using Tabula.Packaging;

namespace Tabula.Images.Relay;

/// <summary>
/// <see cref="InitramfsLayout.RelayConfig"/> of the relay OS: where the agent finds its fleet controller, <c>{"version":1,"fleet_url":"https://…"}</c>.
/// The agent reads it with Tabula.Relay's <c>RelaySettings.LoadPackageSettings</c>, together with the pinned CA at
/// <see cref="InitramfsLayout.FleetCa"/>; both sit in the signed initramfs, so the signatures cover them. Valid by construction.
/// </summary>
public sealed record RelayConfig
{
    /// <summary>The only version the agent reads.</summary>
    public const int CurrentVersion = 1;

    /// <summary>Longest fleet URL accepted. Arbitrary limit, may be increased.</summary>
    public const int MaxUrlLength = 2048;

    RelayConfig(string fleetUrl) => FleetUrl = fleetUrl;

    /// <summary>Always <see cref="CurrentVersion"/>.</summary>
    public int Version => CurrentVersion;

    /// <summary>The controller's base URL: https, an IP address as host, no user info, no query or fragment.</summary>
    public string FleetUrl { get; }

    /// <summary>A configuration for <paramref name="fleetUrl"/>; <see cref="ImageError.InputInvalid"/> unless it is a plain https base URL.</summary>
    public static RelayConfig Create(string fleetUrl)
    {
        ArgumentNullException.ThrowIfNull(fleetUrl);
        if (fleetUrl.Length > MaxUrlLength)
            ImageException.Throw(ImageError.InputInvalid, $"fleet URL is longer than {MaxUrlLength} characters");
        if (!Uri.TryCreate(fleetUrl, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps || uri.Host.Length == 0)
            ImageException.Throw(ImageError.InputInvalid, $"fleet URL must be https://IP[:PORT][/PATH], got \"{fleetUrl}\"");
        // The static agent has no resolver (no NSS libraries, no DNS configuration in the RAM OS): a name never resolves.
        if (uri.HostNameType is not (UriHostNameType.IPv4 or UriHostNameType.IPv6))
            ImageException.Throw(ImageError.InputInvalid,
                $"fleet URL host must be an IP address (the relay agent does not resolve names), got \"{uri.Host}\"");
        // The file goes into a signed, widely copied package: a password in it would be published.
        if (uri.UserInfo.Length > 0)
            ImageException.Throw(ImageError.InputInvalid, "fleet URL must not carry user info (credentials)");
        if (uri.Query.Length > 0 || uri.Fragment.Length > 0)
            ImageException.Throw(ImageError.InputInvalid, "fleet URL must not have a query or a fragment (it is a base URL)");
        return new RelayConfig(fleetUrl);
    }

    /// <summary>Compact UTF-8 JSON, keys in the order version, fleet_url, newline-terminated. Same value, same bytes.</summary>
    public byte[] ToJson() =>
        [.. JsonSerializer.SerializeToUtf8Bytes(new Wire(Version, FleetUrl), RelayConfigJson.Default.Wire), (byte)'\n'];

    internal sealed record Wire(int Version, string FleetUrl);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(RelayConfig.Wire))]
internal sealed partial class RelayConfigJson : JsonSerializerContext;

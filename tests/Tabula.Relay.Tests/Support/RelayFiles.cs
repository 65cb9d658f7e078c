using System.Text.Json.Nodes;
using Tabula.Packaging;
using Tabula.Packaging.Crypto;
using Tabula.Tls;

namespace Tabula.Relay.Tests.Support;

/// <summary>
/// A relay's three configuration files in a temporary root, as the relay image (relay.json, fleet-ca.pem) and stboot's
/// hand-over (handover.json) lay them out, with a dev CA whose server certificate names 127.0.0.1.
/// </summary>
public sealed class RelayFiles : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("tabula-relay-").FullName;
    public DevTlsFiles Tls { get; }
    public byte[] IdentityKey { get; } = Ed25519.NewPrivateKey();
    public string Digest { get; } = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    public RelayFiles(string fleetUrl = "https://127.0.0.1:8443", string enrollmentToken = "tet_example")
    {
        Tls = DevCertificateAuthority.Init(Path.Combine(Root, "tls"), ["127.0.0.1", "localhost"], DateTimeOffset.UtcNow,
            TimeSpan.FromDays(30), TimeSpan.FromDays(30));
        Directory.CreateDirectory(Path.Combine(Root, InitramfsLayout.TabulaDirectory));
        WriteRelayJson(new JsonObject { ["version"] = 1, ["fleet_url"] = fleetUrl });
        File.Copy(Tls.CaCertificate, Path.Combine(Root, InitramfsLayout.FleetCa));
        WriteHandover(HostConfig(enrollmentToken));
    }

    /// <summary>The host configuration stboot would hand over: static network and the relay's secrets.</summary>
    public JsonObject HostConfig(string enrollmentToken) => new()
    {
        ["network_mode"] = "static",
        ["host_ip"] = "10.0.2.15/24",
        ["gateway"] = "10.0.2.2",
        ["ospkg_pointer"] = "https://10.0.2.2:8443/ospkg/stable.json",
        ["tabula_relay"] = new JsonObject
        {
            ["identity_key"] = Convert.ToBase64String(IdentityKey),
            ["enrollment_token"] = enrollmentToken,
        },
    };

    public void WriteRelayJson(JsonNode json) => File.WriteAllText(Path.Combine(Root, InitramfsLayout.RelayConfig), json.ToJsonString());

    /// <summary>Writes handover.json as stboot does, with the one writer (<see cref="HandoverRecord"/>).</summary>
    /// <remarks>With <paramref name="measurement"/>'s event log, the log goes beside it (<see cref="InitramfsLayout.EventLog"/>), as stboot's cpio has it.</remarks>
    public void WriteHandover(JsonObject hostConfig, HandoverFreshness? freshness = null, HandoverMeasurement? measurement = null)
    {
        File.WriteAllBytes(Path.Combine(Root, InitramfsLayout.Handover),
            new HandoverRecord(Sha256Digest.Parse(Digest, "digest"), FetchMethod.Network, "https://10.0.2.2:8443/ospkg/stable.json",
                "/etc/host_configuration.json", System.Text.Encoding.UTF8.GetBytes(hostConfig.ToJsonString())) { Freshness = freshness, Measurement = measurement }.ToJson());
        if (measurement?.EventLog is { } log)
            File.WriteAllBytes(Path.Combine(Root, InitramfsLayout.EventLog), log);
    }

    public void Dispose() => Directory.Delete(Root, recursive: true);
}

using System.Security.Cryptography;
using System.Text.Json;
using Tabula.Fleet.Protocol;
using Tabula.Packaging;
using Tabula.Packaging.Crypto;

namespace Tabula.Relay.Settings;

/// <summary>
/// What the agent runs on, from two sources of different trust:
/// <list type="bullet">
/// <item>the signed package (verified by stboot): <c>/etc/tabula/relay.json</c> <c>{"version":1,"fleet_url":"https://…"}</c>
/// (with several controller instances also <c>"fleet_urls":[…]</c>) and <c>/etc/tabula/fleet-ca.pem</c>, the only roots
/// the agent trusts for the controller;</item>
/// <item>stboot's hand-over (<c>/etc/tabula/handover.json</c>, read by <see cref="HandoverRecord"/>): the verified package digest and this machine's host
/// configuration, whose <c>tabula_relay</c> object carries the machine's secrets:
/// <c>{"identity_key": base64 of the 32-byte Ed25519 private key, "enrollment_token": "…"}</c>, and optionally
/// <c>"fleet_urls": ["https://…", …]</c>, this machine's controller instances, which replace the image's list (one
/// image for regions with their own controllers). The host configuration chooses among controllers only: every one is
/// held to the package's pinned CA, and whoever writes this object already holds the machine's identity key.</item>
/// </list>
/// </summary>
public sealed class RelaySettings : IDisposable
{
    public const string RelayJson = InitramfsLayout.RelayConfig, FleetCaPem = InitramfsLayout.FleetCa, HandoverJson = InitramfsLayout.Handover;
    const int MaxConfigBytes = 64 * 1024;

    /// <summary>The controller instances in the order the agent tries them (issue 18): the host configuration's
    /// <c>tabula_relay.fleet_urls</c> if it has them, else the image's <c>relay.json</c>.</summary>
    public required IReadOnlyList<Uri> FleetUrls { get; init; }
    /// <summary>The first of <see cref="FleetUrls"/>.</summary>
    public Uri FleetUrl => FleetUrls[0];
    public required IReadOnlyList<Certificate> FleetCa { get; init; }
    public required string PackageDigest { get; init; }
    public required HostConfig Host { get; init; }
    /// <summary>The Ed25519 identity private key; zeroed by <see cref="Dispose"/>.</summary>
    public required byte[] IdentityKey { get; init; }
    public required string EnrollmentToken { get; init; }
    /// <summary>What stboot knew of this boot's freshness (issue 16), reported at enrollment; null from an stboot without it.</summary>
    public Tabula.Fleet.Protocol.FreshnessReport? Freshness { get; init; }
    /// <summary>What stboot measured (issue 19): null from an stboot before measured boot.</summary>
    public HandoverMeasurement? Measurement { get; init; }
    /// <summary>stboot's event log (<see cref="InitramfsLayout.EventLog"/>, checked against the hand-over's digest); empty when
    /// stboot handed over none.</summary>
    public Tabula.Tpm.Measurements.EventLog EventLog { get; init; } = Tabula.Tpm.Measurements.EventLog.Empty;

    public void Dispose() => CryptographicOperations.ZeroMemory(IdentityKey);

    /// <summary>Reads the three files under <paramref name="root"/> ("/" on a relay).</summary>
    public static RelaySettings Load(string root)
    {
        var (fleetUrls, ca) = LoadPackageSettings(root);
        byte[] bytes = Read(root, HandoverJson, Limits.MaxHandoverBytes);
        HandoverRecord handover;
        try
        {
            handover = HandoverRecord.Parse(bytes);
        }
        catch (PackageFormatException e)
        {
            throw new RelaySettingsException(e.Error == FormatError.TooLarge ? SettingsError.TooLarge : SettingsError.Malformed, HandoverJson, e.Message);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);   // it holds the identity key
        }
        try
        {
            var log = handover.Measurement is { } measurement ? LoadEventLog(root, measurement) : Tabula.Tpm.Measurements.EventLog.Empty;
            return FromHandover(handover, fleetUrls, ca, log);
        }
        finally
        {
            handover.Clear();
        }
    }

    /// <summary>
    /// stboot's event log beside the hand-over, when <c>measured_boot.event_log_sha256</c> names one: it must be those bytes
    /// and parse (Tabula.Tpm's <see cref="Tabula.Tpm.Measurements.EventLog"/>, bounded), or the hand-over is refused.
    /// </summary>
    static Tabula.Tpm.Measurements.EventLog LoadEventLog(string root, HandoverMeasurement measurement)
    {
        if (measurement.EventLogSha256 is null) return Tabula.Tpm.Measurements.EventLog.Empty;
        byte[] bytes = Read(root, InitramfsLayout.EventLog, Tabula.Tpm.Measurements.EventLogLimits.MaxLogBytes);
        if (!measurement.Matches(bytes))
            throw new RelaySettingsException(SettingsError.Malformed, InitramfsLayout.EventLog, "is not the log handover.json's measured_boot.event_log_sha256 names");
        try
        {
            return Tabula.Tpm.Measurements.EventLog.Parse(bytes);
        }
        catch (Tabula.Tpm.Measurements.EventLogException e)
        {
            throw new RelaySettingsException(SettingsError.Malformed, InitramfsLayout.EventLog, e.Message);
        }
    }

    /// <summary>The signed part: the controllers' URLs (relay.json, read by its owner <see cref="RelayConfig"/>) and pinned CA.</summary>
    public static (IReadOnlyList<Uri> FleetUrls, IReadOnlyList<Certificate> FleetCa) LoadPackageSettings(string root)
    {
        IReadOnlyList<Uri> urls;
        try
        {
            urls = RelayConfig.Parse(Read(root, RelayJson, RelayConfig.MaxBytes)).FleetUrls;
        }
        catch (RelayConfigException e)
        {
            throw new RelaySettingsException(e.Reason switch
            {
                RelayConfigError.TooLarge => SettingsError.TooLarge,
                RelayConfigError.Malformed => SettingsError.Malformed,
                _ => SettingsError.Unsupported,
            }, RelayJson, e.Message);
        }
        IReadOnlyList<Certificate> ca;
        try
        {
            ca = Certificate.ParsePemBundle(Read(root, FleetCaPem, MaxConfigBytes));
        }
        catch (PackageFormatException e)
        {
            throw new RelaySettingsException(SettingsError.Malformed, FleetCaPem, e.Message);
        }
        if (ca.Count == 0)
            throw new RelaySettingsException(SettingsError.Malformed, FleetCaPem, "holds no certificate");
        return (urls, ca);
    }

    /// <summary>The relay's part of the hand-over: the host configuration and its <c>tabula_relay</c> secrets.</summary>
    static RelaySettings FromHandover(HandoverRecord handover, IReadOnlyList<Uri> fleetUrls, IReadOnlyList<Certificate> ca, Tabula.Tpm.Measurements.EventLog log)
    {
        HostConfig host;
        try
        {
            host = HostConfig.Parse(handover.HostConfigJson);
        }
        catch (PackageFormatException e)
        {
            throw new RelaySettingsException(SettingsError.Malformed, HandoverJson, $"host_config: {e.Message}");
        }
        try
        {
            byte[] identity;
            try
            {
                identity = MachineIdentity.PrivateKeyFromHostConfig(handover.HostConfigJson);   // the one reader, shared with stboot
            }
            catch (PackageFormatException e)
            {
                throw new RelaySettingsException(e.Error == FormatError.MissingEntry ? SettingsError.Missing : SettingsError.Malformed,
                    HandoverJson, e.Message);
            }
            try
            {
                using var document = JsonDocument.Parse(handover.HostConfigJson);
                var secrets = document.RootElement.GetProperty("tabula_relay");
                string token = String(secrets, "enrollment_token", HandoverJson);
                if (token.Length is 0 or > 256 || token.Any(c => c is <= ' ' or > '~'))
                    throw new RelaySettingsException(SettingsError.Malformed, HandoverJson, "tabula_relay.enrollment_token must be 1-256 printable ASCII characters");
                if (secrets.TryGetProperty("fleet_urls", out var machineUrls))
                    fleetUrls = MachineFleetUrls(machineUrls);
                return new RelaySettings
                {
                    FleetUrls = fleetUrls, FleetCa = ca, PackageDigest = handover.OsPackageSha256.Hex, Host = host, IdentityKey = identity, EnrollmentToken = token,
                    Freshness = handover.Freshness is { } f
                        ? new Tabula.Fleet.Protocol.FreshnessReport(f.Fresh, f.Reason, f.Ticket is null ? null : Convert.ToBase64String(f.Ticket), f.Release, f.MachineClass)
                        : null,
                    Measurement = handover.Measurement, EventLog = log,
                };
            }
            catch
            {
                CryptographicOperations.ZeroMemory(identity);
                throw;
            }
        }
        catch (JsonException e)   // not reached: the record's reader checked the JSON
        {
            throw new RelaySettingsException(SettingsError.Malformed, HandoverJson, $"invalid JSON at line {e.LineNumber + 1}");
        }
    }

    /// <summary><c>tabula_relay.fleet_urls</c>: checked as the image's list is (<see cref="RelayConfig.ValidateFleetUrls"/>).</summary>
    static IReadOnlyList<Uri> MachineFleetUrls(JsonElement list)
    {
        if (list.ValueKind != JsonValueKind.Array || list.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String)
            || list.GetArrayLength() > RelayConfig.MaxFleetUrls)
            throw new RelaySettingsException(SettingsError.Malformed, HandoverJson, $"tabula_relay.fleet_urls must be an array of 1 to {RelayConfig.MaxFleetUrls} URLs");
        try
        {
            return RelayConfig.ValidateFleetUrls([.. list.EnumerateArray().Select(e => e.GetString()!)]);
        }
        catch (RelayConfigException e)
        {
            throw new RelaySettingsException(SettingsError.Unsupported, HandoverJson, $"tabula_relay.{e.Message}");
        }
        catch (InvalidOperationException)
        {
            throw new RelaySettingsException(SettingsError.Malformed, HandoverJson, "tabula_relay.fleet_urls: a string escapes an unpaired surrogate");
        }
    }

    static string String(JsonElement parent, string name, string file) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString()!
            : throw new RelaySettingsException(SettingsError.Malformed, file, $"{name} must be a string");

    static byte[] Read(string root, string relative, int limit)
    {
        string path = Path.Combine(root, relative);
        try
        {
            using var file = File.OpenRead(path);
            if (file.Length > limit)
                throw new RelaySettingsException(SettingsError.TooLarge, relative, $"is {file.Length} bytes; the limit is {limit}");
            var bytes = new byte[file.Length];
            file.ReadExactly(bytes);
            return bytes;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new RelaySettingsException(SettingsError.Missing, relative, "is missing");
        }
    }
}

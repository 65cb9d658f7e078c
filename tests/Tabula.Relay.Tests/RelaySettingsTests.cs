using System.Text.Json.Nodes;
using Tabula.Fleet.Protocol;
using Tabula.Packaging;
using Tabula.Relay.Settings;
using Tabula.Relay.Tests.Support;

namespace Tabula.Relay.Tests;

public sealed class RelaySettingsTests
{
    [Fact]
    public void Reads_the_package_settings_and_the_handover()
    {
        using var files = new RelayFiles();
        using var settings = RelaySettings.Load(files.Root);
        Assert.Equal("https://127.0.0.1:8443/", settings.FleetUrl.ToString());
        Assert.Single(settings.FleetCa);
        Assert.Equal(files.Digest, settings.PackageDigest);
        Assert.Equal("10.0.2.15", settings.Host.HostAddress!.ToString());
        Assert.Equal(files.IdentityKey, settings.IdentityKey);
        Assert.Equal("tet_example", settings.EnrollmentToken);
    }

    [Fact]
    public void Stboots_freshness_in_the_handover_is_what_the_relay_reports_at_enrollment()
    {
        using var files = new RelayFiles();
        using (var none = RelaySettings.Load(files.Root))
            Assert.Null(none.Freshness);                      // an stboot without freshness: reported as nothing (unreported)
        byte[] ticket = [1, 2, 3, 4];
        files.WriteHandover(files.HostConfig("tet_example"), new HandoverFreshness(false, "ticket-unavailable", null, 3, "relay"));
        using (var unfresh = RelaySettings.Load(files.Root))
            Assert.Equal(new FreshnessReport(false, "ticket-unavailable", null, 3, "relay"), unfresh.Freshness);
        files.WriteHandover(files.HostConfig("tet_example"), new HandoverFreshness(true, null, ticket, 3, "relay"));
        using var fresh = RelaySettings.Load(files.Root);
        Assert.Equal(new FreshnessReport(true, null, Convert.ToBase64String(ticket), 3, "relay"), fresh.Freshness);
    }

    [Fact]
    public void Stboots_event_log_is_read_beside_the_handover_and_one_that_is_not_the_named_log_is_refused()
    {
        using var files = new RelayFiles();
        using (var before = RelaySettings.Load(files.Root))
        {
            Assert.Null(before.Measurement);                  // an stboot before measured boot
            Assert.Empty(before.EventLog.Events);
        }
        var log = Tabula.Tpm.Measurements.EventLog.Of([
            Tabula.Tpm.Measurements.MeasuredEvent.OfData(12, Tabula.Tpm.Measurements.StbootEvent.OspkgManifest, "{}"u8),
            Tabula.Tpm.Measurements.MeasuredEvent.OfData(13, Tabula.Tpm.Measurements.StbootEvent.SecurityConfig, "{}"u8)]);
        files.WriteHandover(files.HostConfig("tet_example"), measurement: HandoverMeasurement.Of(true, null, log.ToBytes()));
        using (var measured = RelaySettings.Load(files.Root))
        {
            Assert.True(measured.Measurement!.Measured);
            Assert.Equal(log.Events, measured.EventLog.Events);
        }

        // Another log beside the hand-over than the one it names: refused, never attested with.
        File.WriteAllBytes(Path.Combine(files.Root, InitramfsLayout.EventLog), Tabula.Tpm.Measurements.EventLog.Empty.ToBytes());
        var swapped = Assert.Throws<RelaySettingsException>(() => RelaySettings.Load(files.Root));
        Assert.Equal(SettingsError.Malformed, swapped.Reason);
        Assert.Contains("event_log_sha256", swapped.Message);

        // Named but missing.
        File.Delete(Path.Combine(files.Root, InitramfsLayout.EventLog));
        Assert.Equal(SettingsError.Missing, Assert.Throws<RelaySettingsException>(() => RelaySettings.Load(files.Root)).Reason);

        // No TPM at boot (optional policy): no log, the relay enrolls without evidence.
        files.WriteHandover(files.HostConfig("tet_example"), measurement: HandoverMeasurement.Of(false, "no TPM", null));
        using var unmeasured = RelaySettings.Load(files.Root);
        Assert.False(unmeasured.Measurement!.Measured);
        Assert.Empty(unmeasured.EventLog.Events);
    }

    [Fact]
    public void The_images_controller_list_is_read_in_order_and_a_machines_own_list_replaces_it()
    {
        using var files = new RelayFiles();
        files.WriteRelayJson(JsonNode.Parse("""{"version":1,"fleet_url":"https://10.0.0.1:9443","fleet_urls":["https://10.0.0.1:9443","https://10.0.0.2:9443"]}""")!);
        using (var image = RelaySettings.Load(files.Root))
        {
            Assert.Equal([new Uri("https://10.0.0.1:9443"), new Uri("https://10.0.0.2:9443")], image.FleetUrls);
            Assert.Equal(new Uri("https://10.0.0.1:9443"), image.FleetUrl);
        }
        var host = files.HostConfig("tet_example");
        ((JsonObject)host["tabula_relay"]!)["fleet_urls"] = new JsonArray("https://fleet-eu-2.example.net:9443", "https://fleet-eu-1.example.net:9443");
        files.WriteHandover(host);
        using var machine = RelaySettings.Load(files.Root);
        Assert.Equal([new Uri("https://fleet-eu-2.example.net:9443"), new Uri("https://fleet-eu-1.example.net:9443")], machine.FleetUrls);
    }

    [Theory]
    [InlineData("[]", SettingsError.Unsupported, "1 to 8")]
    [InlineData("\"https://10.0.0.2\"", SettingsError.Malformed, "array of 1 to 8")]
    [InlineData("[\"http://10.0.0.2\"]", SettingsError.Unsupported, "https://")]
    [InlineData("[\"https://10.0.0.2\",\"https://10.0.0.2\"]", SettingsError.Unsupported, "twice")]
    public void A_machines_bad_controller_list_is_refused_with_the_field_named(string list, SettingsError error, string why)
    {
        using var files = new RelayFiles();
        var host = files.HostConfig("tet_example");
        ((JsonObject)host["tabula_relay"]!)["fleet_urls"] = JsonNode.Parse(list);
        files.WriteHandover(host);
        var e = Assert.Throws<RelaySettingsException>(() => RelaySettings.Load(files.Root));
        Assert.Equal(error, e.Reason);
        Assert.Contains("tabula_relay.fleet_url", e.Message);
        Assert.Contains(why, e.Message);
    }

    [Fact]
    public void Dispose_zeroes_the_identity_key()
    {
        using var files = new RelayFiles();
        var settings = RelaySettings.Load(files.Root);
        byte[] key = settings.IdentityKey;
        settings.Dispose();
        Assert.All(key, b => Assert.Equal(0, b));
    }

    public static TheoryData<string, string, SettingsError, string> Broken => new()
    {
        { "relay.json", """{"version":1,"fleet_url":"http://10.0.2.2:8080"}""", SettingsError.Unsupported, "https://" },
        { "relay.json", """{"version":1,"fleet_url":"https://user:pw@10.0.2.2"}""", SettingsError.Unsupported, "without credentials" },
        { "relay.json", """{"version":2,"fleet_url":"https://10.0.2.2"}""", SettingsError.Unsupported, "version must be 1" },
        { "relay.json", """{"version":1}""", SettingsError.Malformed, "fleet_url must be a string" },
        { "relay.json", """{"version":1,""", SettingsError.Malformed, "invalid JSON" },
        { "relay.json", "[]", SettingsError.Malformed, "not a JSON object" },
        { "fleet-ca.pem", "no pem here", SettingsError.Malformed, "" },
        { "fleet-ca.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", SettingsError.Malformed, "" },
        { "handover.json", Handover("\"abc\"", "{}"), SettingsError.Malformed, "64 lowercase hex" },
        { "handover.json", Handover(Digest, null), SettingsError.Malformed, "\"host_config\" is required" },
        { "handover.json", Handover(Digest, """{"network_mode":"static","host_ip":"10.0.2.15/24","gateway":"10.0.2.2","ospkg_pointer":"https://x/y.json"}"""),
            SettingsError.Missing, "no tabula_relay" },
        { "handover.json", Handover(Digest, """{"network_mode":"carrier-pigeon"}"""), SettingsError.Malformed, "host_config: " },
        { "handover.json", """{"version":2}""", SettingsError.Malformed, "version 2 is not supported" },
        { "handover.json", "not json", SettingsError.Malformed, "not valid JSON" },
    };

    static readonly string Digest = "\"" + new string('a', 64) + "\"";

    /// <summary>A hand-over as stboot writes it but with <paramref name="digest"/> and <paramref name="hostConfig"/> (null: omitted).</summary>
    static string Handover(string digest, string? hostConfig) =>
        $$"""{"version":1,"ospkg_sha256":{{digest}},"ospkg_source":"network","host_config_source":"efivar:STHostConfig"{{(hostConfig is null ? "" : $",\"host_config\":{hostConfig}")}}}""";

    [Theory]
    [MemberData(nameof(Broken))]
    public void Broken_files_are_refused_with_a_typed_reason(string file, string content, SettingsError reason, string detail)
    {
        using var files = new RelayFiles();
        File.WriteAllText(Path.Combine(files.Root, "etc/tabula", file), content);
        var e = Assert.Throws<RelaySettingsException>(() => RelaySettings.Load(files.Root));
        Assert.Equal(reason, e.Reason);
        Assert.Contains(detail, e.Message);
        Assert.Contains(file, e.File);
    }

    [Theory]
    [InlineData("AAAA", "32 bytes")]
    [InlineData("!!not base64!!", "not base64")]
    public void A_bad_identity_key_is_refused_without_echoing_it(string key, string detail)
    {
        using var files = new RelayFiles();
        var hostConfig = files.HostConfig("tet_secret_value");
        hostConfig["tabula_relay"]!["identity_key"] = key;
        files.WriteHandover(hostConfig);
        var e = Assert.Throws<RelaySettingsException>(() => RelaySettings.Load(files.Root));
        Assert.Contains(detail, e.Message);
        Assert.DoesNotContain(key, e.Message);
        Assert.DoesNotContain("tet_secret_value", e.Message);
    }

    [Fact]
    public void Missing_and_oversized_files_are_reported()
    {
        using var files = new RelayFiles();
        File.WriteAllBytes(Path.Combine(files.Root, "etc/tabula/handover.json"), new byte[2 * 1024 * 1024]);
        Assert.Equal(SettingsError.TooLarge, Assert.Throws<RelaySettingsException>(() => RelaySettings.Load(files.Root)).Reason);
        File.Delete(Path.Combine(files.Root, "etc/tabula/fleet-ca.pem"));
        var e = Assert.Throws<RelaySettingsException>(() => RelaySettings.Load(files.Root));
        Assert.Equal((SettingsError.Missing, "etc/tabula/fleet-ca.pem"), (e.Reason, e.File));
    }
}

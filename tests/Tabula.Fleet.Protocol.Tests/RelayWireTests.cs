using System.Text;
using System.Text.Json;
using Tabula.Fleet.Protocol;

namespace Tabula.Fleet.Protocol.Tests;

/// <summary>The /relay/v1 records whose egress fields were appended: new JSON round-trips, old JSON still parses.</summary>
public sealed class RelayWireTests
{
    [Fact]
    public void Relay_config_with_egress_fields_round_trips_with_snake_case_names()
    {
        var config = new RelayConfigView("m1", "deployed", 51820, "10.64.0.1/10", "fc00:bbbb:bbbb:bb01::1/64",
            ["203.0.113.10", "2001:db8:203::10"], ["192.0.2.0/24"], "198.51.100.11", "2001:db8:64::11", ["10.198.0.1"]);
        string json = JsonSerializer.Serialize(config, RelayWireJson.Default.RelayConfigView);
        foreach (string field in new[] { "\"dns_upstreams\"", "\"blocked_prefixes\"", "\"public_ipv4\"", "\"public_ipv6\"", "\"private_endpoints\"" })
            Assert.Contains(field, json);
        var read = JsonSerializer.Deserialize(json, RelayWireJson.Default.RelayConfigView)!;
        Assert.Equal((config.MachineId, config.PublicIpv4, config.PublicIpv6), (read.MachineId, read.PublicIpv4, read.PublicIpv6));
        Assert.Equal(config.DnsUpstreams, read.DnsUpstreams);
        Assert.Equal(config.BlockedPrefixes, read.BlockedPrefixes);
        Assert.Equal(config.PrivateEndpoints, read.PrivateEndpoints);
    }

    [Fact]
    public void Relay_config_of_an_older_controller_parses_with_no_egress_settings()
    {
        const string old = """{"machine_id":"m1","state":"provisioned","listen_port":51820,"ipv4_gateway":"10.64.0.1/10","ipv6_gateway":"fc00:bbbb:bbbb:bb01::1/64"}""";
        var read = JsonSerializer.Deserialize(Encoding.UTF8.GetBytes(old), RelayWireJson.Default.RelayConfigView)!;
        Assert.Equal(("m1", "provisioned", 51820), (read.MachineId, read.State, read.ListenPort));
        Assert.Null(read.DnsUpstreams);
        Assert.Null(read.BlockedPrefixes);
        Assert.Null(read.PublicIpv4);
        Assert.Null(read.PublicIpv6);
        Assert.Null(read.PrivateEndpoints);
    }

    [Fact]
    public void Health_report_round_trips_its_egress_totals_and_an_older_agents_report_parses_with_zeros()
    {
        var report = new HealthReport(3, 2, 1000, 2000, 7, 11, 12_000, 13, 14, 15);
        string json = JsonSerializer.Serialize(report, RelayWireJson.Default.HealthReport);
        foreach (string field in new[] { "\"forwarded_packets\":11", "\"forwarded_bytes\":12000", "\"isolation_dropped_packets\":13", "\"nat_entries\":14", "\"dns_queries_answered\":15" })
            Assert.Contains(field, json);
        Assert.Equal(report, JsonSerializer.Deserialize(json, RelayWireJson.Default.HealthReport));

        const string old = """{"peers":3,"handshakes_last_minute":2,"rx_bytes":1000,"tx_bytes":2000,"applied_revision":7}""";
        Assert.Equal(new HealthReport(3, 2, 1000, 2000, 7), JsonSerializer.Deserialize(old, RelayWireJson.Default.HealthReport));
    }

    [Fact]
    public void Health_report_carries_connected_peers_uptime_and_agent_version_which_an_older_agent_omits()
    {
        var report = new HealthReport(3, 2, 1000, 2000, 7, HandshakesLast3Minutes: 3, UptimeSeconds: 86_400, AgentVersion: "0.1");
        string json = JsonSerializer.Serialize(report, RelayWireJson.Default.HealthReport);
        foreach (string field in new[] { "\"handshakes_last_3_minutes\":3", "\"uptime_seconds\":86400", "\"agent_version\":\"0.1\"" })
            Assert.Contains(field, json);
        Assert.Equal(report, JsonSerializer.Deserialize(json, RelayWireJson.Default.HealthReport));
        // Absent from an older agent (null, not zero: "unknown"), and not written when unknown, so an older controller reads the same.
        var old = new HealthReport(3, 2, 1000, 2000, 7);
        string written = JsonSerializer.Serialize(old, RelayWireJson.Default.HealthReport);
        Assert.DoesNotContain("handshakes_last_3_minutes", written);
        Assert.DoesNotContain("uptime_seconds", written);
        Assert.DoesNotContain("agent_version", written);
        var read = JsonSerializer.Deserialize("""{"peers":3,"handshakes_last_minute":2,"rx_bytes":1000,"tx_bytes":2000,"applied_revision":7}""",
            RelayWireJson.Default.HealthReport)!;
        Assert.Null(read.HandshakesLast3Minutes);
        Assert.Null(read.UptimeSeconds);
        Assert.Null(read.AgentVersion);
    }
}

using System.Net;
using Tabula.Linux.Netlink;
using Tabula.Linux.Netlink.Route;
using Tabula.Linux.Netlink.Netfilter;
using Tabula.Relay.Firewall;

namespace Tabula.Relay.Tests.Firewall;

/// <summary>Validation and the pure builder: no kernel involved.</summary>
public sealed class EgressPolicyTests
{
    static readonly IReadOnlyList<InterfaceAddress> Uplink =
        [new(2, IPAddress.Parse("203.0.113.1"), 24), new(2, IPAddress.Parse("2001:db8:1::1"), 64), new(2, IPAddress.Parse("fe80::1"), 64)];

    static EgressConfig Good => new("up0", "wg0", PublicIPv4: "203.0.113.1", PublicIPv6: "2001:db8:1::1");

    [Fact]
    public void Defaults_follow_the_issue_and_block_the_uplink_subnets()
    {
        var policy = EgressPolicy.FromConfig(Good, Uplink);
        Assert.Equal(IPNetwork.Parse("10.64.0.0/10"), policy.PoolIPv4);
        Assert.Equal(IPNetwork.Parse("fc00:bbbb:bbbb:bb01::/64"), policy.PoolIPv6);
        Assert.Equal(IPAddress.Parse("10.64.0.1"), policy.GatewayIPv4);
        Assert.Contains(IPNetwork.Parse("100.64.0.0/10"), policy.Blocked);
        Assert.Contains(IPNetwork.Parse("203.0.113.0/24"), policy.Blocked);
        Assert.Contains(IPNetwork.Parse("2001:db8:1::/64"), policy.Blocked);
        Assert.DoesNotContain(policy.Blocked, p => p.BaseAddress.IsIPv6LinkLocal && p.PrefixLength == 64);
    }

    public static TheoryData<EgressConfig, EgressPolicyError> BadConfigs => new()
    {
        { Good with { BlockedPrefixes = ["10.0.0.0/8", "192.168.1.0/33"] }, EgressPolicyError.MalformedPrefix },
        { Good with { BlockedPrefixes = ["10.0.0.1/8"] }, EgressPolicyError.MalformedPrefix },
        { Good with { PoolIPv4 = "fc00::/64" }, EgressPolicyError.MalformedPrefix },
        { Good with { PoolIPv4 = "203.0.113.128/25", GatewayIPv4 = "203.0.113.129" }, EgressPolicyError.OverlappingPool },
        { Good with { ManagementEndpoints = ["10.64.0.9"] }, EgressPolicyError.OverlappingPool },
        { Good with { GatewayIPv4 = "10.200.0.1" }, EgressPolicyError.GatewayOutsidePool },
        { Good with { PublicIPv4 = "198.51.100.1" }, EgressPolicyError.PublicAddressNotOnUplink },
        { Good with { PublicIPv6 = "2001:db8:1::99" }, EgressPolicyError.PublicAddressNotOnUplink },
        { Good with { UplinkInterface = "eth0/../x" }, EgressPolicyError.InvalidInterface },
        { Good with { WireGuardInterface = "a-name-longer-than-15" }, EgressPolicyError.InvalidInterface },
        { Good with { DnsPort = 0 }, EgressPolicyError.InvalidPort },
    };

    [Theory, MemberData(nameof(BadConfigs))]
    public void Bad_config_is_refused_with_its_reason(EgressConfig config, EgressPolicyError reason)
    {
        var refused = Assert.Throws<EgressPolicyException>(() => EgressPolicy.FromConfig(config, Uplink));
        Assert.Equal(reason, refused.Reason);
        Assert.DoesNotContain("203.0.113", refused.Message);
    }

    [Fact]
    public void Builder_makes_one_inet_table_with_forward_input_and_nat_chains()
    {
        var ruleset = EgressRuleset.Build(EgressPolicy.FromConfig(Good, Uplink));
        Assert.Equal(new NfTable(NfTablesFamily.Inet, "tabula_relay"), ruleset.Table);
        Assert.Equal(["forward", "input", "postrouting"], ruleset.Chains.Select(c => c.Name));
        Assert.Equal(NfVerdict.Drop, ruleset.Chains[0].Base!.Policy);
        Assert.Equal(5, ruleset.Rules.Count(r => r.Comment == EgressRuleset.IsolationComment));
        Assert.Contains(ruleset.Rules, r => r.Comment == "nat6" && r.Expressions.Any(e => e.Name == "nat"));
        var blocked4 = ruleset.Sets.Single(s => s.Name == "blocked4");
        // 10/8, 172.16/12, 192.168/16, 100.64/10, 169.254/16, 203.0.113/24: six ranges, a start and an end each.
        Assert.Equal(12, blocked4.Elements.Count);
    }
}

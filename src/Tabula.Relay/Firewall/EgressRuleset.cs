using System.Net.Sockets;
using Tabula.Linux.Netlink.Netfilter;
using Tabula.Linux.Netlink.Netfilter.Expressions;

namespace Tabula.Relay.Firewall;

/// <summary>
/// Builds the relay's one nf_tables table from an <see cref="EgressPolicy"/>. Pure: no kernel, no I/O.
/// </summary>
/// <remarks>
/// In nft's words, the table is:
/// <code>
/// table inet tabula_relay {
///   set pool4/pool6     { interval: the tunnel pools }
///   set blocked4/blocked6 { interval: private/reserved ranges, management endpoints, the uplink's subnets }
///   chain forward { type filter hook forward priority 0; policy drop;
///     tcp flags syn tcp option maxseg size set rt mtu                     # MSS clamp to the path MTU
///     iifname WG ip daddr @pool4 counter drop     (and ip6 @pool6)         # customer to customer
///     iifname WG ip daddr @blocked4 counter drop  (and ip6 @blocked6)      # customer to private/management
///     ct state established,related counter accept                          # replies; inbound only if opened from inside
///     iifname WG oifname UPLINK ip saddr @pool4 counter accept (and ip6)  # new connections out
///   }
///   chain input { type filter hook input priority 0; policy accept;
///     iifname WG ip daddr GW4 meta l4proto { tcp, udp } th dport 53 accept (and ip6 GW6)
///     iifname WG ip daddr GW4 tcp dport 8019 accept (and ip6 GW6; only with an attestation service, issue 19)
///     iifname WG ip daddr GW4 icmp type echo-request accept (optional, and icmpv6)
///     iifname WG icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
///     iifname WG counter drop                                              # nothing else of the relay
///   }
///   chain postrouting { type nat hook postrouting priority srcnat;
///     oifname UPLINK ip saddr @pool4 snat ip to PUBLIC4 (masquerade without one)
///     oifname UPLINK ip6 saddr @pool6 snat ip6 to PUBLIC6 (NAT66)
///   }
/// }
/// </code>
/// Rules carry comments: <see cref="ForwardedComment"/> and <see cref="IsolationComment"/> name the counters summed
/// into <see cref="EgressCounters"/>; they count totals, never per customer.
/// </remarks>
public static class EgressRuleset
{
    /// <summary>The table the agent owns; nothing else of the machine's ruleset is touched.</summary>
    public static readonly NfTable Table = new(NfTablesFamily.Inet, "tabula_relay");

    /// <summary>Comment of the rules whose counters sum to forwarded traffic.</summary>
    public const string ForwardedComment = "forwarded";

    /// <summary>Comment of the rules whose counters sum to traffic dropped by isolation.</summary>
    public const string IsolationComment = "isolation";

    /// <summary>The ruleset for <paramref name="policy"/>.</summary>
    public static NfRuleset Build(EgressPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        const AddressFamily V4 = AddressFamily.InterNetwork, V6 = AddressFamily.InterNetworkV6;
        var blocked4 = policy.Blocked.Where(p => p.BaseAddress.AddressFamily == V4);
        var blocked6 = policy.Blocked.Where(p => p.BaseAddress.AddressFamily == V6);
        var sets = new List<NfSet>
        {
            new("pool4", NfSetKeyType.IPv4Address, NfIntervals.FromPrefixes(V4, [policy.PoolIPv4]), Interval: true),
            new("pool6", NfSetKeyType.IPv6Address, NfIntervals.FromPrefixes(V6, [policy.PoolIPv6]), Interval: true),
            new("blocked4", NfSetKeyType.IPv4Address, NfIntervals.FromPrefixes(V4, blocked4), Interval: true),
            new("blocked6", NfSetKeyType.IPv6Address, NfIntervals.FromPrefixes(V6, blocked6), Interval: true),
        };
        var chains = new List<NfChain>
        {
            new("forward", new NfBaseChain(NfChainType.Filter, NfHook.Forward, 0, NfVerdict.Drop)),
            new("input", new NfBaseChain(NfChainType.Filter, NfHook.Input, 0, NfVerdict.Accept)),
            new("postrouting", new NfBaseChain(NfChainType.Nat, NfHook.Postrouting, 100, NfVerdict.Accept)),
        };

        NfExpression[] fromWg = NfMatch.InterfaceName(NfMetaKey.InputInterfaceName, policy.WireGuardInterface);
        NfExpression[] toUplink = NfMatch.InterfaceName(NfMetaKey.OutputInterfaceName, policy.UplinkInterface);
        NfExpression[] countDrop = [new NfCounter(), new NfVerdictExpression(NfVerdict.Drop)];
        NfExpression[] countAccept = [new NfCounter(), new NfVerdictExpression(NfVerdict.Accept)];
        var rules = new List<NfRule>
        {
            new("forward", NfMatch.ClampMssToPathMtu(), "mss-clamp"),
            new("forward", [.. fromWg, .. NfMatch.AddressInSet(V4, source: false, "pool4"), .. countDrop], IsolationComment),
            new("forward", [.. fromWg, .. NfMatch.AddressInSet(V6, source: false, "pool6"), .. countDrop], IsolationComment),
            new("forward", [.. fromWg, .. NfMatch.AddressInSet(V4, source: false, "blocked4"), .. countDrop], IsolationComment),
            new("forward", [.. fromWg, .. NfMatch.AddressInSet(V6, source: false, "blocked6"), .. countDrop], IsolationComment),
            new("forward", [.. NfMatch.ConntrackState(NfCtState.Established | NfCtState.Related), .. countAccept], ForwardedComment),
            new("forward", [.. fromWg, .. toUplink, .. NfMatch.AddressInSet(V4, source: true, "pool4"), .. countAccept], ForwardedComment),
            new("forward", [.. fromWg, .. toUplink, .. NfMatch.AddressInSet(V6, source: true, "pool6"), .. countAccept], ForwardedComment),
        };

        foreach (var (gateway, suffix) in new[] { (policy.GatewayIPv4, "4"), (policy.GatewayIPv6, "6") })
        {
            // An anonymous set { tcp, udp }, bound to this one rule.
            string protocols = $"dns-protocols{suffix}";
            sets.Add(new NfSet(protocols, NfSetKeyType.InetProtocol, [new([NfMatch.Tcp]), new([NfMatch.Udp])], Anonymous: true));
            rules.Add(new NfRule("input",
                [.. fromWg, .. NfMatch.AddressEquals(gateway, source: false), new NfMeta(NfMetaKey.L4Proto), new NfLookup(protocols),
                 .. NfMatch.DestinationPort(policy.DnsPort), new NfVerdictExpression(NfVerdict.Accept)], "dns"));
        }
        // The in-tunnel attestation service (issue 19): TCP only, and only when the relay runs it. It rate-limits per peer itself.
        if (policy.AttestationPort is { } attestation)
            foreach (var gateway in new[] { policy.GatewayIPv4, policy.GatewayIPv6 })
                rules.Add(new NfRule("input", [.. fromWg, .. NfMatch.AddressEquals(gateway, source: false), .. NfMatch.L4Proto(NfMatch.Tcp),
                    .. NfMatch.DestinationPort(attestation), new NfVerdictExpression(NfVerdict.Accept)], "attestation"));
        if (policy.AllowGatewayPing)
        {
            rules.Add(new NfRule("input", [.. fromWg, .. NfMatch.AddressEquals(policy.GatewayIPv4, source: false), .. NfMatch.L4Proto(NfMatch.Icmp),
                new NfPayload(NfPayloadBase.Transport, 0, 1), new NfCmp(NfCmpOperator.Equal, [8]), new NfVerdictExpression(NfVerdict.Accept)], "ping"));
            rules.Add(new NfRule("input", [.. fromWg, .. NfMatch.AddressEquals(policy.GatewayIPv6, source: false), .. NfMatch.L4Proto(NfMatch.IcmpV6),
                new NfPayload(NfPayloadBase.Transport, 0, 1), new NfCmp(NfCmpOperator.Equal, [128]), new NfVerdictExpression(NfVerdict.Accept)], "ping"));
        }
        // Neighbour solicitation and advertisement: a real wg interface has no link layer and never sees them, but a
        // tunnel side with one (a bridge, a veth in tests) needs them for IPv6 to work at all.
        foreach (byte type in new byte[] { 135, 136 })
            rules.Add(new NfRule("input", [.. fromWg, .. NfMatch.Family(V6), .. NfMatch.L4Proto(NfMatch.IcmpV6),
                new NfPayload(NfPayloadBase.Transport, 0, 1), new NfCmp(NfCmpOperator.Equal, [type]), new NfVerdictExpression(NfVerdict.Accept)], "neighbour-discovery"));
        rules.Add(new NfRule("input", [.. fromWg, .. countDrop], IsolationComment));

        rules.Add(new NfRule("postrouting", [.. toUplink, .. NfMatch.AddressInSet(V4, source: true, "pool4"), .. Nat(policy.PublicIPv4?.GetAddressBytes(), NfTablesFamily.IPv4)], "nat4"));
        rules.Add(new NfRule("postrouting", [.. toUplink, .. NfMatch.AddressInSet(V6, source: true, "pool6"), .. Nat(policy.PublicIPv6?.GetAddressBytes(), NfTablesFamily.IPv6)], "nat6"));
        return new NfRuleset(Table, sets, chains, rules);
    }

    static NfExpression[] Nat(byte[]? address, NfTablesFamily family) => address is null
        ? [new NfMasquerade()]
        : [new NfImmediateData(address), new NfNat(NfNatType.Source, family)];
}

using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Tabula.Linux;
using Tabula.Linux.Netlink.Netfilter;
using Tabula.Linux.Netlink.Netfilter.Expressions;
using Tabula.Linux.Netlink.Route;
using Tabula.Relay.Firewall;

// Usage: Tabula.Egress.Bench apply NETNS UPLINK WG PUBLIC4 PUBLIC6 PREFIXES   (prints: prefixes=N create_ms=… replace_ms=…)
//        Tabula.Egress.Bench nat-only NETNS UPLINK PUBLIC4                    (conntrack and SNAT, no filter: what NAT alone costs)
//        Tabula.Egress.Bench counters NETNS                                   (prints: forwarded_packets=… isolation_dropped=… nat_entries=…)
//        Tabula.Egress.Bench remove NETNS
// PREFIXES private prefixes are listed, half IPv4 /24s and half IPv6 /64s, spaced so that none merge.
string[] usage = ["apply NETNS UPLINK WG PUBLIC4 PUBLIC6 PREFIXES", "nat-only NETNS UPLINK PUBLIC4", "counters NETNS", "remove NETNS"];
int arity = args.Length > 0 ? args[0] switch { "apply" => 7, "nat-only" => 4, "counters" or "remove" => 2, _ => -1 } : -1;
if (args.Length != arity)
{
    Console.Error.WriteLine("usage: Tabula.Egress.Bench " + string.Join(" | ", usage));
    return 2;
}
string nsPath = $"/run/netns/{args[1]}";
var firewall = new EgressFirewall();
return Namespaces.RunInside(nsPath, NamespaceKind.Network, () =>
{
    switch (args[0])
    {
        case "remove":
            firewall.Remove(EgressRuleset.Table);
            return 0;
        case "counters":
            var counters = firewall.ReadCounters(EgressRuleset.Table);
            Console.WriteLine(FormattableString.Invariant(
                $"forwarded_packets={counters.ForwardedPackets} isolation_dropped={counters.IsolationDroppedPackets} nat_entries={counters.NatEntries}"));
            return 0;
        case "nat-only":
            firewall.Apply(NatOnly(args[2], IPAddress.Parse(args[3])));
            return 0;
        default:
            return Apply(args[2], args[3], args[4], args[5], int.Parse(args[6], CultureInfo.InvariantCulture));
    }
});

int Apply(string uplinkName, string wireGuard, string public4, string public6, int count)
{
    var prefixes = new List<string>(count);
    for (int i = 0; i < count; i++)
        prefixes.Add(i % 2 == 0
            ? new IPAddress(BitConverter.GetBytes(IPAddress.HostToNetworkOrder(0x14000000 + (i / 2) * 512))).ToString() + "/24"
            : $"2001:db8:{(i / 2) * 2 % 65536:x}:{(i / 2) / 32768}::/64");
    using var rtnl = RouteSocket.Open();
    int index = rtnl.GetLinks().Single(l => l.Name == uplinkName).Index;
    var uplink = rtnl.GetAddresses().Where(a => a.InterfaceIndex == index).ToList();
    var config = new EgressConfig(uplinkName, wireGuard, public4, public6, BlockedPrefixes: [.. EgressPolicy.DefaultBlockedPrefixes, .. prefixes]);
    var policy = EgressPolicy.FromConfig(config, uplink);
    // Warm-up, not timed: the first netlink round trips JIT the code (the relay's NativeAOT agent has no JIT).
    firewall.Apply(EgressPolicy.FromConfig(config with { BlockedPrefixes = EgressPolicy.DefaultBlockedPrefixes }, uplink));
    firewall.Remove(EgressRuleset.Table);
    var clock = Stopwatch.StartNew();
    firewall.Apply(policy);
    double create = clock.Elapsed.TotalMilliseconds;
    var changed = EgressPolicy.FromConfig(config with { BlockedPrefixes = [.. config.BlockedPrefixes!, "192.0.2.0/24"] }, uplink);
    clock.Restart();
    firewall.Apply(changed);
    double replace = clock.Elapsed.TotalMilliseconds;
    EgressFirewall.ApplySysctls(policy, Sysctl.Proc);
    Console.WriteLine(FormattableString.Invariant($"prefixes={count} create_ms={create:F1} replace_ms={replace:F1}"));
    return 0;
}

// The relay's NAT rule alone (same table name, so `remove` takes it away): every packet goes through conntrack and the
// first of each flow through SNAT, with no filter chain. Separates what stateful NAT costs from what the rules add.
static NfRuleset NatOnly(string uplink, IPAddress public4) => new(EgressRuleset.Table,
    [new NfSet("pool4", NfSetKeyType.IPv4Address, NfIntervals.FromPrefixes(AddressFamily.InterNetwork, [IPNetwork.Parse("10.64.0.0/10")]), Interval: true)],
    [new NfChain("postrouting", new NfBaseChain(NfChainType.Nat, NfHook.Postrouting, 100, NfVerdict.Accept))],
    [new NfRule("postrouting", [.. NfMatch.InterfaceName(NfMetaKey.OutputInterfaceName, uplink),
        .. NfMatch.AddressInSet(AddressFamily.InterNetwork, source: true, "pool4"),
        new NfImmediateData(public4.GetAddressBytes()), new NfNat(NfNatType.Source, NfTablesFamily.IPv4)], "nat4")]);

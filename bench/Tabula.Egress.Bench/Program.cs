using System.Diagnostics;
using System.Globalization;
using System.Net;
using Tabula.Linux;
using Tabula.Linux.Netlink.Route;
using Tabula.Relay.Firewall;

// Usage: Tabula.Egress.Bench apply NETNS UPLINK WG PUBLIC4 PUBLIC6 PREFIXES   (prints: prefixes=N create_ms=… replace_ms=…)
//        Tabula.Egress.Bench remove NETNS
// PREFIXES private prefixes are listed, half IPv4 /24s and half IPv6 /48s, spaced so that none merge.
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: Tabula.Egress.Bench apply NETNS UPLINK WG PUBLIC4 PUBLIC6 PREFIXES | remove NETNS");
    return 2;
}
string nsPath = $"/run/netns/{args[1]}";
if (args[0] == "remove")
{
    Namespaces.RunInside(nsPath, NamespaceKind.Network, () => { new EgressFirewall().Remove(EgressRuleset.Table); return 0; });
    return 0;
}
int count = int.Parse(args[6], CultureInfo.InvariantCulture);
var prefixes = new List<string>(count);
for (int i = 0; i < count; i++)
    prefixes.Add(i % 2 == 0
        ? new IPAddress(BitConverter.GetBytes(IPAddress.HostToNetworkOrder(0x14000000 + (i / 2) * 512))).ToString() + "/24"
        : $"2001:db8:{(i / 2) * 2 % 65536:x}:{(i / 2) / 32768}::/64");
return Namespaces.RunInside(nsPath, NamespaceKind.Network, () =>
{
    using var rtnl = RouteSocket.Open();
    int index = rtnl.GetLinks().Single(l => l.Name == args[2]).Index;
    var uplink = rtnl.GetAddresses().Where(a => a.InterfaceIndex == index).ToList();
    var config = new EgressConfig(args[2], args[3], args[4], args[5], BlockedPrefixes: [.. EgressPolicy.DefaultBlockedPrefixes, .. prefixes]);
    var policy = EgressPolicy.FromConfig(config, uplink);
    var firewall = new EgressFirewall();
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
});

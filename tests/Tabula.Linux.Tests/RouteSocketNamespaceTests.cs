using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Tabula.Linux.Netlink.Route;
using Tabula.Testing;

namespace Tabula.Linux.Tests;

/// <summary>Real rtnetlink in a fresh network namespace with a veth pair; results read back with iproute2.</summary>
public sealed class RouteSocketNamespaceTests
{
    [PrivilegedFact("ip")]
    public void Links_addresses_and_default_routes_configured_through_rtnetlink_show_up_in_ip()
    {
        Prerequisites.Require(needsRoot: true, "ip");
        using var ns = NetworkNamespace.Create("rtnl");
        ns.Ip("link", "add", "tva", "type", "veth", "peer", "name", "tvb");
        string mac = JsonDocument.Parse(ns.Ip("-j", "link", "show", "dev", "tva")).RootElement[0].GetProperty("address").GetString()!;

        var links = ns.RunInside(() =>
        {
            using var rtnl = RouteSocket.Open();
            var before = rtnl.GetLinks();
            Link a = before.Single(l => l.Name == "tva");
            Link b = before.Single(l => l.Name == "tvb");
            rtnl.SetLinkUp(a.Index);
            rtnl.SetLinkUp(b.Index);
            rtnl.AddAddress(a.Index, IPAddress.Parse("10.200.0.2"), 24);
            rtnl.AddAddress(a.Index, IPAddress.Parse("fd00:7ab::2"), 64);
            rtnl.AddDefaultRoute(IPAddress.Parse("10.200.0.1"), a.Index);
            rtnl.AddDefaultRoute(IPAddress.Parse("fd00:7ab::1"), a.Index);
            var duplicate = Assert.Throws<LinuxException>(() => rtnl.AddAddress(a.Index, IPAddress.Parse("10.200.0.2"), 24));
            Assert.Equal(Errno.EEXIST, duplicate.Errno);
            Assert.DoesNotContain("10.200.0.2", duplicate.Message);
            return (before, after: rtnl.GetLinks(), addresses: rtnl.GetAddresses());
        });

        Link tva = links.before.Single(l => l.Name == "tva");
        Assert.Equal(mac.Replace(":", "").ToUpperInvariant(), tva.HardwareAddress!.ToString());
        Assert.Contains(links.before, l => l.Name == "lo" && (l.Flags & LinkFlags.Loopback) != 0);
        Assert.True((links.after.Single(l => l.Name == "tva").Flags & LinkFlags.Up) != 0);
        Assert.Contains(links.addresses, a => a.InterfaceIndex == tva.Index && a.Address.Equals(IPAddress.Parse("10.200.0.2")) && a.PrefixLength == 24);

        var addr = JsonDocument.Parse(ns.Ip("-j", "addr", "show", "dev", "tva")).RootElement[0];
        var infos = addr.GetProperty("addr_info").EnumerateArray()
            .Select(i => (i.GetProperty("local").GetString(), i.GetProperty("prefixlen").GetInt32())).ToList();
        Assert.Contains(("10.200.0.2", 24), infos);
        Assert.Contains(("fd00:7ab::2", 64), infos);
        Assert.Contains("UP", addr.GetProperty("flags").EnumerateArray().Select(f => f.GetString()));

        var route4 = JsonDocument.Parse(ns.Ip("-j", "route", "show", "default")).RootElement[0];
        Assert.Equal("10.200.0.1", route4.GetProperty("gateway").GetString());
        Assert.Equal("tva", route4.GetProperty("dev").GetString());
        var route6 = JsonDocument.Parse(ns.Ip("-j", "-6", "route", "show", "default")).RootElement[0];
        Assert.Equal("fd00:7ab::1", route6.GetProperty("gateway").GetString());
    }

    [PrivilegedFact("ip")]
    public void Route_to_an_unreachable_gateway_fails_with_ENETUNREACH()
    {
        Prerequisites.Require(needsRoot: true, "ip");
        using var ns = NetworkNamespace.Create("rtnl");
        var e = ns.RunInside(() =>
        {
            using var rtnl = RouteSocket.Open();
            return Assert.Throws<LinuxException>(() => rtnl.AddDefaultRoute(IPAddress.Parse("10.201.0.1")));
        });
        Assert.Equal(Errno.ENETUNREACH, e.Errno);
        Assert.True(e.IsTransient);
        Assert.Equal(AddressFamily.InterNetwork, IPAddress.Parse("10.201.0.1").AddressFamily);
    }
}

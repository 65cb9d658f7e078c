using System.Text.Json;
using Tabula.Linux.Netlink;
using Tabula.Linux.Netlink.Route;
using Tabula.Testing;

namespace Tabula.Linux.Tests;

/// <summary>Link creation, lookup by name, deletion and batches through real rtnetlink in a fresh namespace, checked with iproute2.</summary>
public sealed class RouteLinkNamespaceTests
{
    [PrivilegedFact("ip")]
    public void A_link_is_created_by_kind_found_by_name_raised_and_deleted()
    {
        // "bridge" stands in for "wireguard" where the module is missing: the same RTM_NEWLINK/IFLA_INFO_KIND path.
        Prerequisites.Require(needsRoot: true, "ip");
        using var ns = NetworkNamespace.Create("link");
        var again = ns.RunInside(() =>
        {
            using var rtnl = RouteSocket.Open();
            Assert.Null(rtnl.GetLink("tbbr0"));
            rtnl.CreateLink("tbbr0", LinkKind.Bridge);
            Link link = rtnl.GetLink("tbbr0") ?? throw new InvalidOperationException("created link not found");
            Assert.Equal("tbbr0", link.Name);
            rtnl.SetLinkUp(link.Index);
            return Assert.Throws<LinuxException>(() => rtnl.CreateLink("tbbr0", LinkKind.Bridge));
        });
        Assert.Equal(Errno.EEXIST, again.Errno);
        var shown = JsonDocument.Parse(ns.Ip("-j", "-d", "link", "show", "tbbr0")).RootElement[0];
        Assert.Equal("bridge", shown.GetProperty("linkinfo").GetProperty("info_kind").GetString());
        Assert.Contains("UP", shown.GetProperty("flags").EnumerateArray().Select(f => f.GetString()));

        var gone = ns.RunInside(() =>
        {
            using var rtnl = RouteSocket.Open();
            int index = rtnl.GetLink("tbbr0")!.Index;
            rtnl.DeleteLink(index);
            Assert.Null(rtnl.GetLink("tbbr0"));
            return Assert.Throws<LinuxException>(() => rtnl.DeleteLink(index));
        });
        Assert.Equal(Errno.ENODEV, gone.Errno);
        Assert.DoesNotContain("tbbr0", ns.Ip("link", "show"));
    }

    [PrivilegedFact("ip")]
    public void A_links_mtu_is_set_read_back_and_a_value_out_of_range_is_refused()
    {
        // The relay sets its WireGuard link's MTU this way (1420); the host kernel may lack the wireguard module, so a bridge
        // stands in: the same RTM_NEWLINK/IFLA_MTU path.
        Prerequisites.Require(needsRoot: true, "ip");
        using var ns = NetworkNamespace.Create("mtu");
        var (after, refused) = ns.RunInside(() =>
        {
            using var rtnl = RouteSocket.Open();
            rtnl.CreateLink("tbm0", LinkKind.Bridge);
            int index = rtnl.GetLink("tbm0")!.Index;
            rtnl.SetLinkMtu(index, 1380);
            Assert.Equal(1380u, rtnl.GetLink("tbm0")!.Mtu);
            rtnl.SetLinkMtu(index, 1420);
            return (rtnl.GetLink("tbm0")!.Mtu, Assert.Throws<LinuxException>(() => rtnl.SetLinkMtu(index, 10)));
        });
        Assert.Equal(1420u, after);
        Assert.Equal(Errno.EINVAL, refused.Errno);
        Assert.Equal(1420, JsonDocument.Parse(ns.Ip("-j", "link", "show", "tbm0")).RootElement[0].GetProperty("mtu").GetInt32());
    }

    [PrivilegedFact("ip")]
    public void An_unknown_link_kind_is_refused_with_the_kernels_extended_ack_text()
    {
        Prerequisites.Require(needsRoot: true, "ip");
        using var ns = NetworkNamespace.Create("kind");
        var e = ns.RunInside(() =>
        {
            using var rtnl = RouteSocket.Open();
            return Assert.Throws<LinuxException>(() => rtnl.CreateLink("tbx0", "tabula-nosuch"));
        });
        Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
        Assert.False(string.IsNullOrEmpty(e.KernelMessage), "no NLMSGERR_ATTR_MSG: " + e.Message);
        Assert.Contains(e.KernelMessage!, e.Message);
    }

    [PrivilegedFact("ip")]
    public void A_batch_is_one_datagram_acknowledged_per_message_and_the_first_refusal_names_its_index()
    {
        Prerequisites.Require(needsRoot: true, "ip");
        using var ns = NetworkNamespace.Create("batch");
        var refused = ns.RunInside(() =>
        {
            using var socket = NetlinkSocket.Open(NetlinkProtocol.Route);
            var batch = new NetlinkBatch();
            batch.Add(RouteSocket.BuildCreateLink("tbd0", LinkKind.Bridge));
            batch.Add(RouteSocket.BuildCreateLink("tbd1", LinkKind.Bridge));
            socket.Acknowledge(batch, "create two");
            Assert.Equal(2, batch.Count);

            batch.Clear();
            batch.Add(RouteSocket.BuildCreateLink("tbd2", LinkKind.Bridge));
            batch.Add(RouteSocket.BuildCreateLink("tbd0", LinkKind.Bridge));   // exists: EEXIST
            batch.Add(RouteSocket.BuildCreateLink("tbd3", LinkKind.Bridge));
            var e = Assert.Throws<LinuxException>(() => socket.Acknowledge(batch, "create three"));

            // Every reply was read: the socket answers the next request in step.
            using var rtnl = new RouteSocket(socket);
            Assert.NotNull(rtnl.GetLink("tbd3"));
            return e;
        });
        Assert.Equal(Errno.EEXIST, refused.Errno);
        Assert.Contains("message 1 of 3", refused.Call);
        string links = ns.Ip("-o", "link", "show");
        foreach (string name in new[] { "tbd0", "tbd1", "tbd2", "tbd3" })
            Assert.Contains(name, links);
    }
}

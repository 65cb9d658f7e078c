using System.Net;
using System.Net.Sockets;
using Tabula.Linux;
using Tabula.Linux.Netlink;
using Tabula.Linux.Netlink.Route;
using Tabula.Relay.Firewall;

namespace Tabula.Relay.Tests.Firewall;

/// <summary>
/// Three kinds of namespace joined by veth pairs, the relay in the middle:
/// <code>
///  cust1 (10.64.0.2, pool::2) ─┐                                 ┌─ internet: uplink peer 203.0.113.2 / 2001:db8:1::2,
///                              ├─ wgx (bridge, gateways) [relay] up0 ─┤  echo host 198.51.100.10 / 2001:db8:2::10 on lo,
///  cust2 (10.64.0.3, pool::3) ─┘   203.0.113.1 / 2001:db8:1::1  └─ routes the pools back via the relay
/// </code>
/// The "WireGuard" side is a bridge carrying pool addresses, so customer-to-customer traffic is routed through the
/// relay as it is on a real wg interface. Customers hold /32 and /128 addresses with the gateway as next hop.
/// </summary>
public sealed class EgressTopology : IDisposable
{
    public static readonly IPAddress Echo4 = IPAddress.Parse("198.51.100.10"), Echo6 = IPAddress.Parse("2001:db8:2::10");
    public static readonly IPAddress Public4 = IPAddress.Parse("203.0.113.1"), Public6 = IPAddress.Parse("2001:db8:1::1");
    public static readonly IPAddress UplinkPeer4 = IPAddress.Parse("203.0.113.2");
    public static readonly IPAddress Customer1v4 = IPAddress.Parse("10.64.0.2"), Customer1v6 = IPAddress.Parse("fc00:bbbb:bbbb:bb01::2");
    public static readonly IPAddress Customer2v4 = IPAddress.Parse("10.64.0.3"), Customer2v6 = IPAddress.Parse("fc00:bbbb:bbbb:bb01::3");

    readonly List<NetworkNamespace> all = [];

    public EgressTopology()
    {
        try
        {
            Relay = Add(NetworkNamespace.Create("egr"));
            Internet = Add(NetworkNamespace.Create("egi"));
            Customer1 = Add(NetworkNamespace.Create("egc"));
            Customer2 = Add(NetworkNamespace.Create("egc"));

            Relay.Ip("link", "add", "wgx", "type", "bridge");
            Relay.Ip("addr", "add", "10.64.0.1/10", "dev", "wgx");
            Relay.Ip("addr", "add", "fc00:bbbb:bbbb:bb01::1/64", "dev", "wgx", "nodad");
            Relay.Ip("link", "set", "wgx", "up");
            Connect(Customer1, "p1", Customer1v4, Customer1v6);
            Connect(Customer2, "p2", Customer2v4, Customer2v6);

            Relay.Ip("link", "add", "up0", "type", "veth", "peer", "name", "i0", "netns", Internet.Name);
            Relay.Ip("addr", "add", "203.0.113.1/24", "dev", "up0");
            Relay.Ip("addr", "add", "2001:db8:1::1/64", "dev", "up0", "nodad");
            Relay.Ip("link", "set", "up0", "up");
            Relay.Ip("route", "add", "default", "via", "203.0.113.2");
            Relay.Ip("-6", "route", "add", "default", "via", "2001:db8:1::2");
            Internet.Ip("addr", "add", "203.0.113.2/24", "dev", "i0");
            Internet.Ip("addr", "add", "2001:db8:1::2/64", "dev", "i0", "nodad");
            Internet.Ip("link", "set", "i0", "up");
            Internet.Ip("addr", "add", "198.51.100.10/32", "dev", "lo");
            Internet.Ip("addr", "add", "2001:db8:2::10/128", "dev", "lo");
            // A host on the uplink segment that routes the pools via the relay (issue 15 says it reaches no customer).
            Internet.Ip("route", "add", "10.64.0.0/10", "via", "203.0.113.1");
            Internet.Ip("-6", "route", "add", "fc00:bbbb:bbbb:bb01::/64", "via", "2001:db8:1::1");
            Relay.RunInside(() =>
            {
                Sysctl.Proc.Write(SysctlKey.Ipv4Forward, 1);
                Sysctl.Proc.Write(SysctlKey.Ipv6Forwarding(), 1);
            });
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public NetworkNamespace Relay { get; } = null!;
    public NetworkNamespace Internet { get; } = null!;
    public NetworkNamespace Customer1 { get; } = null!;
    public NetworkNamespace Customer2 { get; } = null!;

    public EgressConfig Config(IReadOnlyList<string>? blocked = null) => new("up0", "wgx",
        PublicIPv4: Public4.ToString(), PublicIPv6: Public6.ToString(), BlockedPrefixes: blocked);

    /// <summary>The validated policy, with the uplink's addresses read through rtnetlink inside the relay namespace.</summary>
    public EgressPolicy Policy(IReadOnlyList<string>? blocked = null) => EgressPolicy.FromConfig(Config(blocked), UplinkAddresses());

    public IReadOnlyList<InterfaceAddress> UplinkAddresses() => Relay.RunInside(() =>
    {
        using var rtnl = RouteSocket.Open();
        int index = rtnl.GetLinks().Single(l => l.Name == "up0").Index;
        return (IReadOnlyList<InterfaceAddress>)rtnl.GetAddresses().Where(a => a.InterfaceIndex == index).ToList();
    });

    /// <summary>A UDP socket bound inside <paramref name="ns"/> (it stays there after the thread that made it ends).</summary>
    public static Socket Udp(NetworkNamespace ns, IPAddress bind, int port = 0) => ns.RunInside(() =>
    {
        var socket = new Socket(bind.AddressFamily, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 1000 };
        socket.Bind(new IPEndPoint(bind, port));
        return socket;
    });

    /// <summary>Receives one datagram within the timeout, or null.</summary>
    public static (byte[] Data, IPEndPoint From)? Receive(Socket socket, int timeoutMs = 1000)
    {
        if (!socket.Poll(TimeSpan.FromMilliseconds(timeoutMs), SelectMode.SelectRead))
            return null;
        byte[] buffer = new byte[2048];
        EndPoint from = new IPEndPoint(socket.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
        int n = socket.ReceiveFrom(buffer, ref from);
        return (buffer[..n], (IPEndPoint)from);
    }

    public void Dispose()
    {
        foreach (NetworkNamespace ns in all)
            ns.Dispose();
    }

    NetworkNamespace Add(NetworkNamespace ns)
    {
        all.Add(ns);
        // No duplicate address detection: link-local addresses are usable at once, so no test waits on it.
        ns.RunInside(() =>
        {
            Sysctl.Proc.Write(SysctlKey.Of("net", "ipv6", "conf", "all", "accept_dad"), 0);
            Sysctl.Proc.Write(SysctlKey.Of("net", "ipv6", "conf", "default", "accept_dad"), 0);
            // No ICMP redirects either way: a redirect would teach one customer to reach the other over the bridge,
            // past the relay, which a real wg interface cannot do.
            foreach (string scope in new[] { "all", "default" })
            {
                Sysctl.Proc.Write(SysctlKey.SendRedirects(scope), 0);
                Sysctl.Proc.Write(SysctlKey.Of("net", "ipv4", "conf", scope, "accept_redirects"), 0);
                Sysctl.Proc.Write(SysctlKey.Of("net", "ipv6", "conf", scope, "accept_redirects"), 0);
            }
        });
        return ns;
    }

    void Connect(NetworkNamespace customer, string port, IPAddress v4, IPAddress v6)
    {
        Relay.Ip("link", "add", port, "type", "veth", "peer", "name", "c0", "netns", customer.Name);
        Relay.Ip("link", "set", port, "master", "wgx");
        Relay.Ip("link", "set", port, "up");
        customer.Ip("addr", "add", $"{v4}/32", "dev", "c0");
        customer.Ip("addr", "add", $"{v6}/128", "dev", "c0", "nodad");
        customer.Ip("link", "set", "c0", "up");
        customer.Ip("route", "add", "10.64.0.1", "dev", "c0");
        customer.Ip("route", "add", "default", "via", "10.64.0.1", "dev", "c0");
        customer.Ip("-6", "route", "add", "fc00:bbbb:bbbb:bb01::1", "dev", "c0");
        customer.Ip("-6", "route", "add", "default", "via", "fc00:bbbb:bbbb:bb01::1", "dev", "c0");
    }
}

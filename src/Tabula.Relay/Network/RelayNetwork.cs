using System.Net;
using Tabula.Linux;
using Tabula.Linux.Netlink.Route;

namespace Tabula.Relay.Network;

/// <summary>
/// The relay's own addresses beyond the machine's NIC (which <see cref="Machine.Network.MachineNetwork"/> configures,
/// static or DHCP, as stboot does): the WireGuard interface's gateway addresses and IP forwarding.
/// </summary>
public static class RelayNetwork
{
    /// <summary>Adds an address to a link by name (the WireGuard interface's gateway addresses).</summary>
    public static void AddAddress(string linkName, IPAddress address, int prefixLength)
    {
        using var rtnl = RouteSocket.Open();
        Link link = rtnl.GetLinks().FirstOrDefault(l => l.Name == linkName)
            ?? throw new RelayException("serve", RelayFailure.NoInterface, $"no link named {linkName}");
        IgnoreExisting(() => rtnl.AddAddress(link.Index, address, prefixLength));
    }

    /// <summary>
    /// The pools' gateway addresses on the WireGuard interface, with the pools' prefixes ("10.64.0.1/10"): the prefix
    /// routes every customer address to the interface, and WireGuard's allowed IPs pick the peer.
    /// </summary>
    public static void AddGatewayAddresses(string linkName, Tabula.Fleet.Protocol.RelayConfigView config)
    {
        foreach (string cidr in new[] { config.Ipv4Gateway, config.Ipv6Gateway })
        {
            int slash = cidr.IndexOf('/');
            if (slash < 0 || !IPAddress.TryParse(cidr.AsSpan(0, slash), out var address) || !int.TryParse(cidr.AsSpan(slash + 1), out int prefix))
                throw new RelayException("serve", RelayFailure.BadConfig, "the controller's gateway address is not ADDRESS/PREFIX");
            AddAddress(linkName, address, prefix);
        }
    }

    /// <summary>IPv4 and IPv6 forwarding on, so tunnel traffic can be routed onwards.</summary>
    public static void EnableForwarding(string root)
    {
        File.WriteAllText(Path.Combine(root, "proc/sys/net/ipv4/ip_forward"), "1");
        string v6 = Path.Combine(root, "proc/sys/net/ipv6/conf/all/forwarding");
        if (File.Exists(v6)) File.WriteAllText(v6, "1");
    }

    static void IgnoreExisting(Action add)
    {
        try { add(); }
        catch (LinuxException e) when (e.Errno == Errno.EEXIST) { }
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.NetworkInformation;
using Tabula.Linux;
using Tabula.Linux.Netlink.Route;
using Tabula.Packaging;
using Tabula.Relay.Settings;

namespace Tabula.Relay.Network;

/// <summary>
/// Puts the relay on the network from the host configuration stboot handed over, with rtnetlink: loopback up; the
/// NIC whose MAC the configuration names (else the first NIC with carrier); host_ip and a default route via gateway.
/// kexec reset the devices, so this is done again here even though stboot did the same before.
/// Only static addressing: a relay's public address is what clients connect to, so it is fixed by staff; a host
/// configuration with "network_mode": "dhcp" is refused with a clear reason.
/// </summary>
public static class RelayNetwork
{
    static readonly TimeSpan LinkWait = TimeSpan.FromSeconds(20);

    /// <summary>Configures the network; returns a one-line summary for the console.</summary>
    public static string Configure(HostConfig host)
    {
        if (host.NetworkMode != NetworkMode.Static || host.HostAddress is null || host.PrefixLength is null)
            throw new RelaySettingsException(SettingsError.Unsupported, RelaySettings.HandoverJson,
                "host_config.network_mode must be \"static\" with host_ip: a relay serves on a fixed address");
        using var rtnl = RouteSocket.Open();
        foreach (Link loopback in rtnl.GetLinks().Where(l => (l.Flags & LinkFlags.Loopback) != 0))
            rtnl.SetLinkUp(loopback.Index);

        var wanted = host.NetworkInterfaces.Where(n => n.MacAddress is not null).Select(n => PhysicalAddress.Parse(n.MacAddress!)).ToList();
        var clock = Stopwatch.StartNew();
        Link? chosen = null;
        while (chosen is null && clock.Elapsed < LinkWait)
        {
            var nics = rtnl.GetLinks()
                .Where(l => (l.Flags & LinkFlags.Loopback) == 0 && l.HardwareAddress is { } mac && mac.GetAddressBytes().Length == 6
                    && (wanted.Count == 0 || wanted.Contains(mac)))
                .ToList();
            foreach (Link nic in nics.Where(n => (n.Flags & LinkFlags.Up) == 0))
                rtnl.SetLinkUp(nic.Index);
            chosen = nics.FirstOrDefault(n => n.HasCarrier);
            if (chosen is null) Thread.Sleep(50);
        }
        if (chosen is null)
            throw new RelayException("network", "no_interface",
                $"no network interface{(wanted.Count > 0 ? " with MAC " + string.Join(',', wanted) : "")} has carrier after {LinkWait.TotalSeconds:0}s");

        IgnoreExisting(() => rtnl.AddAddress(chosen.Index, host.HostAddress, host.PrefixLength.Value));
        if (host.Gateway is { } gateway)
            IgnoreExisting(() => rtnl.AddDefaultRoute(gateway, chosen.Index));
        return $"nic={chosen.Name} address={host.HostAddress}/{host.PrefixLength} gateway={host.Gateway?.ToString() ?? "none"}";
    }

    /// <summary>Adds an address to a link by name (the WireGuard interface's gateway addresses).</summary>
    public static void AddAddress(string linkName, IPAddress address, int prefixLength)
    {
        using var rtnl = RouteSocket.Open();
        Link link = rtnl.GetLinks().FirstOrDefault(l => l.Name == linkName)
            ?? throw new RelayException("serve", "no_interface", $"no link named {linkName}");
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
                throw new RelayException("serve", "bad_config", "the controller's gateway address is not ADDRESS/PREFIX");
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

using System.Diagnostics;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Tabula.Boot.Seams;
using Tabula.Linux;
using Tabula.Linux.Netlink.Route;
using Tabula.Packaging;

namespace Tabula.Boot.Network;

/// <summary>
/// Brings the machine onto the network with rtnetlink (formats reference §5 step 2, without bonding):
/// 1. loopback up; wait for NICs with a MAC to appear (modules load asynchronously);
/// 2. candidates: the NICs whose MAC the host configuration lists, else every NIC (upstream falls back the same way);
/// 3. set the candidates up and take the first that reports carrier;
/// 4. static: host_ip (IPv4 or IPv6) and a default route via gateway; dhcp: our DHCPv4 client, then the same;
/// 5. resolvers from the host configuration (or the lease) into /etc/resolv.conf.
/// Running it again after a failed round is harmless: addresses and routes that exist already count as done.
/// </summary>
internal sealed class LinuxNetwork(string root, BootLog log) : INetwork
{
    public NetworkResult Configure(HostConfig host)
    {
        try
        {
            return ConfigureOrThrow(host);
        }
        catch (LinuxException e)
        {
            return new NetworkResult("", new BootFailure("network", FailureReason.NetworkSetupFailed, e.Message));
        }
        catch (KernelDataException e)
        {
            return new NetworkResult("", new BootFailure("network", FailureReason.NetworkSetupFailed, e.Message));
        }
        catch (SocketException e)
        {
            return new NetworkResult("", new BootFailure("network", FailureReason.DhcpFailed, $"socket: {e.SocketErrorCode}"));
        }
    }

    NetworkResult ConfigureOrThrow(HostConfig host)
    {
        using var rtnl = RouteSocket.Open();
        foreach (Link loopback in rtnl.GetLinks().Where(l => (l.Flags & LinkFlags.Loopback) != 0))
            rtnl.SetLinkUp(loopback.Index);

        var wanted = host.NetworkInterfaces.Where(n => n.MacAddress is not null)
            .Select(n => PhysicalAddress.Parse(n.MacAddress!)).ToList();
        var clock = Stopwatch.StartNew();
        List<Link> candidates = [];
        while (clock.Elapsed < BootLimits.LinkWait)
        {
            var nics = rtnl.GetLinks().Where(l => (l.Flags & LinkFlags.Loopback) == 0 && l.HardwareAddress is { } mac && mac.GetAddressBytes().Length == 6).ToList();
            candidates = wanted.Count == 0 ? nics : nics.Where(l => wanted.Contains(l.HardwareAddress!)).ToList();
            if (candidates.Count > 0)
                break;
            if (nics.Count > 0 && clock.Elapsed > TimeSpan.FromSeconds(3))
            {
                log.Note("network", $"no NIC has a MAC from network_interfaces ({string.Join(' ', wanted)}); trying all {nics.Count}");
                candidates = nics;
                break;
            }
            Thread.Sleep(50);
        }
        if (candidates.Count == 0)
            return Failed(FailureReason.NoInterface, $"no network interface with a MAC address after {BootLimits.LinkWait.TotalSeconds:0}s");

        foreach (Link nic in candidates)
            rtnl.SetLinkUp(nic.Index);
        Link? chosen = null;
        while (chosen is null && clock.Elapsed < BootLimits.LinkWait * 2)
        {
            chosen = rtnl.GetLinks().FirstOrDefault(l => candidates.Any(c => c.Index == l.Index) && l.HasCarrier);
            if (chosen is null)
                Thread.Sleep(50);
        }
        if (chosen is null)
            return Failed(FailureReason.NoInterface, $"no carrier on {string.Join(',', candidates.Select(c => c.Name))}");

        IPAddress address, gateway;
        int prefix;
        IReadOnlyList<IPAddress> dns = host.Dns;
        string how;
        if (host.NetworkMode == NetworkMode.Static)
        {
            (address, prefix, gateway) = (host.HostAddress!, host.PrefixLength!.Value, host.Gateway!);
            how = "static";
        }
        else
        {
            using var transport = new UdpDhcpTransport(chosen.Name);
            var client = new DhcpClient(transport, chosen.HardwareAddress!, NewTransactionId, message => log.Note("dhcp", message));
            DhcpLease? lease = client.Acquire(BootLimits.DhcpTimeout);
            if (lease is null)
                return Failed(FailureReason.DhcpFailed, $"no lease on {chosen.Name} within {BootLimits.DhcpTimeout.TotalSeconds:0}s");
            if (lease.Gateway is null)
                log.Note("dhcp", "the lease has no router; only the local network is reachable");
            (address, prefix) = (lease.Address, lease.PrefixLength);
            gateway = lease.Gateway ?? IPAddress.None;
            if (dns.Count == 0)
                dns = lease.DnsServers;
            how = $"dhcp server={lease.Server} lease={lease.LeaseSeconds}s";
        }

        IgnoreExisting(() => rtnl.AddAddress(chosen.Index, address, prefix));
        if (!gateway.Equals(IPAddress.None))
            IgnoreExisting(() => rtnl.AddDefaultRoute(gateway, chosen.Index));
        if (dns.Count > 0)
            WriteResolvConf(dns);
        string gatewayText = gateway.Equals(IPAddress.None) ? "none" : gateway.ToString();
        return new NetworkResult($"nic={chosen.Name} mac={chosen.HardwareAddress} {how} address={address}/{prefix} gateway={gatewayText} dns={dns.Count}");
    }

    static NetworkResult Failed(FailureReason reason, string detail) => new("", new BootFailure("network", reason, detail));

    static void IgnoreExisting(Action add)
    {
        try { add(); }
        catch (LinuxException e) when (e.Errno == Errno.EEXIST) { }
    }

    static uint NewTransactionId()
    {
        Span<byte> bytes = stackalloc byte[4];
        KernelRandom.Fill(bytes);
        return BitConverter.ToUInt32(bytes);
    }

    void WriteResolvConf(IReadOnlyList<IPAddress> servers)
    {
        string etc = Path.Combine(root, "etc");
        Directory.CreateDirectory(etc);
        File.WriteAllLines(Path.Combine(etc, "resolv.conf"), servers.Select(s => $"nameserver {s}"));
    }
}

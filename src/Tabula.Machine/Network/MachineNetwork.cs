using System.Diagnostics;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Tabula.Linux;
using Tabula.Linux.Netlink.Route;
using Tabula.Packaging;

namespace Tabula.Machine.Network;

/// <summary>What <see cref="MachineNetwork.Configure"/> set up.</summary>
/// <param name="Nic">The interface's name.</param>
/// <param name="Mac">Its hardware address.</param>
/// <param name="Address">The address put on it.</param>
/// <param name="PrefixLength">Its prefix length.</param>
/// <param name="Gateway">The default route's gateway, if any.</param>
/// <param name="Dns">The resolvers written to /etc/resolv.conf (from the host configuration, else the lease).</param>
/// <param name="Lease">The DHCP lease, null for a static address.</param>
public sealed record NetworkSetup(string Nic, PhysicalAddress Mac, IPAddress Address, int PrefixLength, IPAddress? Gateway,
    IReadOnlyList<IPAddress> Dns, DhcpLease? Lease)
{
    /// <summary>One line for the console: "nic=eth0 mac=… static address=10.0.0.2/24 gateway=10.0.0.1 dns=1".</summary>
    public string Summary
    {
        get
        {
            string how = Lease is null ? "static" : $"dhcp server={Lease.Server} lease={Lease.LeaseSeconds}s";
            return $"nic={Nic} mac={Mac} {how} address={Address}/{PrefixLength} gateway={Gateway?.ToString() ?? "none"} dns={Dns.Count}";
        }
    }
}

/// <summary>
/// Brings the machine onto the network with rtnetlink (formats reference §5 step 2, without bonding), for stboot and
/// the relay alike:
/// 1. loopback up; wait for NICs with a MAC to appear (modules load asynchronously);
/// 2. candidates: the NICs whose MAC the host configuration lists; when NICs exist but none matches for
///    <see cref="MachineLimits.MacFallback"/>, every NIC (upstream falls back the same way);
/// 3. set the candidates up and take the first that reports carrier;
/// 4. static: host_ip (IPv4 or IPv6) and a default route via gateway; dhcp: our DHCPv4 client, then the same;
/// 5. resolvers from the host configuration (or the lease) into ROOT/etc/resolv.conf.
/// Running it again after a failed round is harmless: addresses and routes that exist already count as done.
/// Failures are <see cref="NetworkException"/>s with a <see cref="NetworkError"/>.
/// </summary>
/// <param name="root">The file system root (/ on a machine) for etc/resolv.conf.</param>
/// <param name="note">Receives remarks (stage name, text) for the console: the MAC fallback, DHCP oddities.</param>
public sealed class MachineNetwork(string root, Action<string, string> note)
{
    /// <summary>Configures the network as <paramref name="host"/> says; throws <see cref="NetworkException"/>.</summary>
    public NetworkSetup Configure(HostConfig host)
    {
        try
        {
            return ConfigureOrThrow(host);
        }
        catch (LinuxException e)
        {
            throw new NetworkException(NetworkError.SetupFailed, e.Message, e);
        }
        catch (KernelDataException e)
        {
            throw new NetworkException(NetworkError.SetupFailed, e.Message, e);
        }
        catch (SocketException e)
        {
            throw new NetworkException(NetworkError.DhcpFailed, $"socket: {e.SocketErrorCode}", e);
        }
    }

    NetworkSetup ConfigureOrThrow(HostConfig host)
    {
        using var rtnl = RouteSocket.Open();
        foreach (Link loopback in rtnl.GetLinks().Where(l => (l.Flags & LinkFlags.Loopback) != 0))
            rtnl.SetLinkUp(loopback.Index);
        Link chosen = ChooseNic(rtnl, host);

        IPAddress address;
        IPAddress? gateway;
        int prefix;
        IReadOnlyList<IPAddress> dns = host.Dns;
        DhcpLease? lease = null;
        if (host.NetworkMode == NetworkMode.Static)
        {
            if (host.HostAddress is null || host.PrefixLength is null)
                throw new NetworkException(NetworkError.BadConfiguration, "network_mode static without host_ip");
            (address, prefix, gateway) = (host.HostAddress, host.PrefixLength.Value, host.Gateway);
        }
        else
        {
            lease = Acquire(chosen.Name, chosen.HardwareAddress!, MachineLimits.DhcpTimeout)
                ?? throw new NetworkException(NetworkError.DhcpFailed, $"no lease on {chosen.Name} within {MachineLimits.DhcpTimeout.TotalSeconds:0}s");
            if (lease.Gateway is null)
                note("dhcp", "the lease has no router; only the local network is reachable");
            (address, prefix, gateway) = (lease.Address, lease.PrefixLength, lease.Gateway);
            if (dns.Count == 0)
                dns = lease.DnsServers;
        }

        IgnoreExisting(() => rtnl.AddAddress(chosen.Index, address, prefix));
        if (gateway is not null)
            IgnoreExisting(() => rtnl.AddDefaultRoute(gateway, chosen.Index));
        if (dns.Count > 0)
            WriteResolvConf(dns);
        return new NetworkSetup(chosen.Name, chosen.HardwareAddress!, address, prefix, gateway, dns, lease);
    }

    Link ChooseNic(RouteSocket rtnl, HostConfig host)
    {
        var wanted = host.NetworkInterfaces.Where(n => n.MacAddress is not null)
            .Select(n => PhysicalAddress.Parse(n.MacAddress!)).ToList();
        var clock = Stopwatch.StartNew();
        List<Link> candidates = [];
        while (clock.Elapsed < MachineLimits.LinkWait)
        {
            var nics = rtnl.GetLinks().Where(l => (l.Flags & LinkFlags.Loopback) == 0 && l.HardwareAddress is { } mac && mac.GetAddressBytes().Length == 6).ToList();
            candidates = wanted.Count == 0 ? nics : nics.Where(l => wanted.Contains(l.HardwareAddress!)).ToList();
            if (candidates.Count > 0)
                break;
            if (nics.Count > 0 && clock.Elapsed > MachineLimits.MacFallback)
            {
                note("network", $"no NIC has a MAC from network_interfaces ({string.Join(' ', wanted)}); trying all {nics.Count}");
                candidates = nics;
                break;
            }
            Thread.Sleep(50);
        }
        if (candidates.Count == 0)
            throw new NetworkException(NetworkError.NoInterface, $"no network interface with a MAC address after {MachineLimits.LinkWait.TotalSeconds:0}s");

        foreach (Link nic in candidates)
            rtnl.SetLinkUp(nic.Index);
        while (clock.Elapsed < MachineLimits.LinkWait * 2)
        {
            if (rtnl.GetLinks().FirstOrDefault(l => candidates.Any(c => c.Index == l.Index) && l.HasCarrier) is { } chosen)
                return chosen;
            Thread.Sleep(50);
        }
        throw new NetworkException(NetworkError.NoInterface, $"no carrier on {string.Join(',', candidates.Select(c => c.Name))}");
    }

    /// <summary>
    /// Renews <paramref name="setup"/>'s lease (RFC 2131 §4.4.5: REQUEST with ciaddr, no server identifier), within
    /// <paramref name="timeout"/>. Returns the setup with the new lease, or null when the server did not answer or
    /// refused (the caller retries, and after the lease ends calls <see cref="Configure"/> again).
    /// </summary>
    public NetworkSetup? Renew(NetworkSetup setup, TimeSpan timeout)
    {
        if (setup.Lease is null)
            return setup;
        try
        {
            using var transport = new UdpDhcpTransport(setup.Nic);
            var client = new DhcpClient(transport, setup.Mac, NewTransactionId, text => note("dhcp", text));
            DhcpLease? renewed = client.Renew(setup.Lease, timeout);
            if (renewed is null)
                return null;
            if (!renewed.Address.Equals(setup.Address))
                return null;   // a server that moves us must do it through a new DISCOVER
            return setup with { Lease = renewed };
        }
        catch (SocketException e)
        {
            note("dhcp", $"renewal socket: {e.SocketErrorCode}");
            return null;
        }
    }

    DhcpLease? Acquire(string nic, PhysicalAddress mac, TimeSpan timeout)
    {
        using var transport = new UdpDhcpTransport(nic);
        return new DhcpClient(transport, mac, NewTransactionId, text => note("dhcp", text)).Acquire(timeout);
    }

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

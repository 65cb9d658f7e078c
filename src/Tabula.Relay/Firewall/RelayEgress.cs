using System.Net;
using System.Net.Sockets;
using Tabula.Fleet.Protocol;
using Tabula.Linux;
using Tabula.Linux.Netlink;
using Tabula.Linux.Netlink.Netfilter;
using Tabula.Linux.Netlink.Route;
using Tabula.Relay.Dns;

namespace Tabula.Relay.Firewall;

/// <summary>Where the relay's egress is applied: the uplink, the management endpoints the agent knows by itself, and the namespace.</summary>
/// <param name="UplinkInterface">The NIC the machine layer configured (customer traffic leaves there).</param>
public sealed record RelayEgressOptions(string UplinkInterface)
{
    /// <summary>
    /// Addresses customers must never reach that the agent knows without the controller: its fleet URL's host and the
    /// handover's package pointers' hosts (the provisioning server), when they are IP literals or resolved names.
    /// </summary>
    public IReadOnlyList<string> ManagementEndpoints { get; init; } = [];

    /// <summary>Runs kernel work (netlink, sysctls, the resolver's sockets) in the relay's network namespace; the
    /// calling thread's by default (the relay OS has one). Host tests run the agent beside a namespace.</summary>
    public Func<Func<object?>, object?> InNamespace { get; init; } = static work => work();

    /// <summary>The management endpoints of <paramref name="urls"/>' hosts: IP literals as they are, names resolved
    /// (bounded, best effort: the controller's own addresses arrive in the config anyway).</summary>
    public static IReadOnlyList<string> EndpointsOf(IEnumerable<Uri> urls, TimeSpan resolveTimeout)
    {
        var found = new List<string>();
        foreach (Uri url in urls)
        {
            string host = url.Host.Trim('[', ']');
            if (IPAddress.TryParse(host, out var address))
            {
                found.Add(address.ToString());
                continue;
            }
            try
            {
                var lookup = System.Net.Dns.GetHostAddressesAsync(host);
                if (lookup.Wait(resolveTimeout))
                    found.AddRange(lookup.Result.Where(a => a.AddressFamily == AddressFamily.InterNetwork || a.ScopeId == 0).Select(a => a.ToString()));
            }
            catch (AggregateException) { }
        }
        return [.. found.Distinct()];
    }
}

/// <summary>
/// The agent's egress stage (docs/relay.md "Egress", "In-tunnel DNS"): from the fleet's relay configuration and the
/// uplink's addresses (rtnetlink) an <see cref="EgressConfig"/>, validated by <see cref="EgressPolicy.FromConfig"/>
/// before the kernel is touched, applied with <see cref="EgressFirewall"/> (an unchanged table is left alone, so this
/// runs again on every configuration poll) and the sysctls; then the in-tunnel resolver on the gateway addresses for
/// the pools, restarted only when its upstreams or addresses change. Counters are totals only.
/// </summary>
public sealed class RelayEgress(RelayEgressOptions options, string wireGuardInterface) : IAsyncDisposable
{
    readonly EgressFirewall firewall = new();
    DnsForwarder? dns;
    string? dnsKey;
    CancellationTokenSource? dnsStop;

    /// <summary>Whether a table has been applied at least once.</summary>
    public bool Applied { get; private set; }

    /// <summary>The in-tunnel attestation service's port while it runs (issue 19): the next application opens it on the
    /// gateway addresses (<see cref="EgressConfig.AttestationPort"/>); null keeps it closed.</summary>
    public int? AttestationPort { get; set; }

    /// <summary>What one application did, for the console: counts and outcomes only.</summary>
    public sealed record Outcome(EgressApplyOutcome Table, int Blocked, int Upstreams, bool DnsRestarted, bool Public4, bool Public6)
    {
        public bool Changed => Table != EgressApplyOutcome.Unchanged || DnsRestarted;

        public string Detail => $"table={Table.ToString().ToLowerInvariant()} blocked={Blocked} nat4={(Public4 ? "snat" : "masquerade")} " +
                                $"nat6={(Public6 ? "snat" : "masquerade")} dns={(Upstreams == 0 ? "off (no upstream resolver in the fleet's config)" : $"on upstreams={Upstreams}")}";
    }

    /// <summary>Applies <paramref name="config"/>; a refusal is a <see cref="RelayException"/> of stage <c>egress</c> (the kernel untouched when the policy is refused).</summary>
    public Outcome Apply(RelayConfigView config)
    {
        var (gateway4, pool4) = Gateway(config.Ipv4Gateway);
        var (gateway6, pool6) = Gateway(config.Ipv6Gateway);
        var blocked = new List<string>(EgressPolicy.DefaultBlockedPrefixes);
        blocked.AddRange(config.BlockedPrefixes ?? []);
        var egressConfig = new EgressConfig(options.UplinkInterface, wireGuardInterface, config.PublicIpv4, config.PublicIpv6,
            pool4.ToString(), pool6.ToString(), gateway4.ToString(), gateway6.ToString(), blocked,
            [.. options.ManagementEndpoints, .. config.PrivateEndpoints ?? []], AttestationPort: AttestationPort);
        var upstreams = Upstreams(config.DnsUpstreams ?? []);
        return (Outcome)options.InNamespace(() => Kernel(egressConfig, upstreams, [gateway4, gateway6], [pool4, pool6]))!;
    }

    Outcome Kernel(EgressConfig config, IReadOnlyList<IPEndPoint> upstreams, IReadOnlyList<IPAddress> gateways, IReadOnlyList<IPNetwork> pools)
    {
        try
        {
            var policy = EgressPolicy.FromConfig(config, UplinkAddresses(config.UplinkInterface));
            var table = firewall.Apply(policy);
            var sysctl = new Sysctl();
            // With forwarding on, the kernel ignores router advertisements unless accept_ra is 2: the uplink would
            // lose its SLAAC address and IPv6 default route (RelayMachine sets it before wg0 turns forwarding on, too).
            sysctl.Write(AcceptRa(config.UplinkInterface), 2);
            EgressFirewall.ApplySysctls(policy, sysctl);
            Applied = true;
            bool restarted = RestartDnsIfChanged(upstreams, gateways, pools);
            return new Outcome(table, policy.Blocked.Count, upstreams.Count, restarted, policy.PublicIPv4 is not null, policy.PublicIPv6 is not null);
        }
        catch (EgressPolicyException e) { throw Failed(RelayFailure.EgressRefused, e.Message, e); }
        catch (EgressFirewallException e) { throw Failed(RelayFailure.FirewallFailed, e.Message, e); }
        catch (Exception e) when (e is LinuxException or KernelDataException or NfTablesException or IOException or UnauthorizedAccessException)
        {
            throw Failed(RelayFailure.FirewallFailed, e.Message, e);
        }
        catch (Exception e) when (e is SocketException or ArgumentException)
        {
            throw Failed(RelayFailure.FirewallFailed, "in-tunnel DNS: " + e.Message, e);
        }
    }

    bool RestartDnsIfChanged(IReadOnlyList<IPEndPoint> upstreams, IReadOnlyList<IPAddress> gateways, IReadOnlyList<IPNetwork> pools)
    {
        string key = string.Join(',', upstreams) + "|" + string.Join(',', gateways) + "|" + string.Join(',', pools);
        if (key == dnsKey) return false;
        StopDns();
        if (upstreams.Count > 0)
        {
            // Binding needs the gateway addresses on wg0 (they are: the device is up); wg0 is NOARP, so no DAD delay.
            dnsStop = new CancellationTokenSource();
            // Every socket (listeners now, a fresh one per upstream attempt later) is made in the relay's namespace.
            dns = DnsForwarder.Start(new DnsOptions { ListenAddresses = gateways, ClientNetworks = pools, Upstreams = upstreams },
                (family, type, protocol) => (Socket)options.InNamespace(() => new Socket(family, type, protocol))!, TimeProvider.System, dnsStop.Token);
        }
        dnsKey = key;
        return true;
    }

    void StopDns()
    {
        dnsStop?.Cancel();
        if (dns is not null)
            dns.DisposeAsync().AsTask().GetAwaiter().GetResult();
        dnsStop?.Dispose();
        dns = null;
        dnsStop = null;
        dnsKey = null;
    }

    /// <summary>The firewall's totals and the resolver's answers; zeros before the first application.</summary>
    public (EgressCounters Firewall, long DnsAnswered) Counters()
    {
        long answered = dns?.Counters.QueriesAnswered ?? 0;
        if (!Applied) return (new EgressCounters(0, 0, 0, 0, 0), answered);
        try
        {
            return ((EgressCounters)options.InNamespace(() => firewall.ReadCounters(EgressRuleset.Table))!, answered);
        }
        catch (Exception e) when (e is LinuxException or KernelDataException or NfTablesException)
        {
            return (new EgressCounters(0, 0, 0, 0, 0), answered);
        }
    }

    /// <summary>Stops the resolver and removes the table (on shutdown).</summary>
    public ValueTask DisposeAsync()
    {
        StopDns();
        if (Applied)
        {
            try { options.InNamespace(() => { firewall.Remove(EgressRuleset.Table); return null; }); }
            catch (Exception e) when (e is LinuxException or NfTablesException) { }
            Applied = false;
        }
        return ValueTask.CompletedTask;
    }

    /// <summary>net.ipv6.conf.DEVICE.accept_ra.</summary>
    public static SysctlKey AcceptRa(string device) => SysctlKey.Of("net", "ipv6", "conf", device, "accept_ra");

    static IReadOnlyList<InterfaceAddress> UplinkAddresses(string name)
    {
        using var rtnl = RouteSocket.Open();
        Link link = rtnl.GetLinks().FirstOrDefault(l => l.Name == name)
            ?? throw new RelayException("egress", RelayFailure.NoInterface, $"no link named {name}");
        return [.. rtnl.GetAddresses().Where(a => a.InterfaceIndex == link.Index)];
    }

    /// <summary>"10.64.0.1/10" → (10.64.0.1, 10.64.0.0/10).</summary>
    static (IPAddress Gateway, IPNetwork Pool) Gateway(string cidr)
    {
        int slash = cidr.IndexOf('/');
        if (slash < 0 || !IPAddress.TryParse(cidr.AsSpan(0, slash), out var address) || !int.TryParse(cidr.AsSpan(slash + 1), out int length)
            || length < 0 || length > (address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128))
            throw new RelayException("egress", RelayFailure.BadConfig, "the controller's gateway address is not ADDRESS/PREFIX");
        byte[] bytes = address.GetAddressBytes();
        for (int i = 0; i < bytes.Length; i++)
            bytes[i] &= (byte)(0xff << (8 - Math.Clamp(length - i * 8, 0, 8)));
        return (address, new IPNetwork(new IPAddress(bytes), length));
    }

    static List<IPEndPoint> Upstreams(IReadOnlyList<string> texts)
    {
        var upstreams = new List<IPEndPoint>();
        foreach (string text in texts)
        {
            if (!IPAddress.TryParse(text, out var address))
                throw new RelayException("egress", RelayFailure.BadConfig, "an upstream resolver of the fleet's config is not an IP address");
            upstreams.Add(new IPEndPoint(address, 53));
        }
        return upstreams;
    }

    static RelayException Failed(RelayFailure reason, string detail, Exception inner) => new("egress", reason, detail, inner);
}

using System.Globalization;
using System.Net;
using Tabula.Linux;

namespace Tabula.Lab;

/// <summary>
/// The lab's small internet (issue 15, /work contract with the relay side; docs/lab.md draws it). Nothing leaves the
/// machine: the lab namespace NAME is the only router, it has no default route and no host NIC.
/// <code>
///   NAME (forwards IPv4 and IPv6)
///     br0   10.198.0.1/24 (management: provisioning, fleet)
///           198.51.100.1/24, 2001:db8:64::1/64 (the relays' public segment; dnsmasq sends RAs, relays take SLAAC)
///     inet0 203.0.113.1/24, 2001:db8:203::1/64
///      ├─ veth ── NAME-echo  203.0.113.10, 2001:db8:203::10: HTTP :80 (`tabula lab echo`), dnsmasq :53 for echo.tabula-lab.test
///      ├─ veth ── NAME-c1    203.0.113.21, 2001:db8:203::21 (a customer's machine)
///      └─ veth ── NAME-c2    203.0.113.22, 2001:db8:203::22 (another customer's machine)
/// </code>
/// </summary>
public static class LabInternet
{
    /// <summary>The internet's bridge inside the lab namespace.</summary>
    public const string Bridge = "inet0";

    /// <summary>The echo host's DNS name (dnsmasq in the echo namespace is authoritative for it).</summary>
    public const string EchoName = "echo.tabula-lab.test";

    /// <summary>The echo host's HTTP port.</summary>
    public const int EchoHttpPort = 80;

    /// <summary>How many customer namespaces the lab builds.</summary>
    public const int Customers = 2;

    /// <summary>The relays' gateway on br0 (IPv4 and IPv6).</summary>
    public static readonly IPAddress PublicGateway4 = IPAddress.Parse("198.51.100.1"), PublicGateway6 = IPAddress.Parse("2001:db8:64::1");

    /// <summary>The internet bridge's addresses: the customers' and the echo host's gateway.</summary>
    public static readonly IPAddress InternetGateway4 = IPAddress.Parse("203.0.113.1"), InternetGateway6 = IPAddress.Parse("2001:db8:203::1");

    /// <summary>The echo host's addresses (also the relays' upstream resolvers).</summary>
    public static readonly IPAddress Echo4 = IPAddress.Parse("203.0.113.10"), Echo6 = IPAddress.Parse("2001:db8:203::10");

    /// <summary>The relays' upstream resolvers, given to the fleet controller (never hard-coded in a relay).</summary>
    public static IReadOnlyList<IPAddress> RelayResolvers => [Echo4, Echo6];

    /// <summary>Relay <paramref name="index"/>'s (0-based) public IPv4, its static host address.</summary>
    public static IPAddress RelayPublic4(int index) => IPAddress.Parse($"198.51.100.{11 + index}");

    /// <summary>Relay <paramref name="index"/>'s public IPv6: what SLAAC makes of the RA's 2001:db8:64::/64 and its MAC
    /// (modified EUI-64: U/L bit flipped, ff:fe in the middle).</summary>
    public static IPAddress RelayPublic6(int index)
    {
        byte[] mac = LabNetwork.RelayMac(index).Split(':').Select(b => byte.Parse(b, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();
        byte[] address = new byte[16];
        IPAddress.Parse("2001:db8:64::").GetAddressBytes().CopyTo(address, 0);
        address[8] = (byte)(mac[0] ^ 0x02);
        address[9] = mac[1];
        address[10] = mac[2];
        address[11] = 0xff;
        address[12] = 0xfe;
        address[13] = mac[3];
        address[14] = mac[4];
        address[15] = mac[5];
        return new IPAddress(address);
    }

    /// <summary>The echo host's namespace.</summary>
    public static string EchoNamespace(string ns) => ns + "-echo";

    /// <summary>Customer <paramref name="number"/>'s (1-based) namespace.</summary>
    public static string CustomerNamespace(string ns, int number) => ns + "-c" + number.ToString(CultureInfo.InvariantCulture);

    /// <summary>Every customer namespace, in order.</summary>
    public static IReadOnlyList<string> CustomerNamespaces(string ns) => [.. Enumerable.Range(1, Customers).Select(n => CustomerNamespace(ns, n))];

    /// <summary>Customer <paramref name="number"/>'s addresses on the internet.</summary>
    public static (IPAddress V4, IPAddress V6) Customer(int number) =>
        (IPAddress.Parse($"203.0.113.{20 + number}"), IPAddress.Parse($"2001:db8:203::{20 + number}"));

    /// <summary>The namespaces hung off the lab namespace (deleted by `down` with it).</summary>
    public static IReadOnlyList<string> Namespaces(string ns) => [EchoNamespace(ns), .. CustomerNamespaces(ns)];

    /// <summary>
    /// Adds the public segment to br0, turns the lab namespace into a router (IPv4 and IPv6 forwarding), and builds
    /// inet0 with the echo and customer namespaces on it. The lab namespace must exist.
    /// </summary>
    public static void Create(string ns)
    {
        LabNetwork.Ip(ns, "addr", "add", PublicGateway4 + "/24", "dev", LabNetwork.Bridge);
        LabNetwork.Ip(ns, "-6", "addr", "add", PublicGateway6 + "/64", "dev", LabNetwork.Bridge, "nodad");
        LabNetwork.RunInside(ns, () =>
        {
            Sysctl.Proc.Write(SysctlKey.Ipv4Forward, 1);
            Sysctl.Proc.Write(SysctlKey.Ipv6Forwarding(), 1);
            return 0;
        });
        LabNetwork.Ip(ns, "link", "add", Bridge, "type", "bridge");
        LabNetwork.Ip(ns, "addr", "add", InternetGateway4 + "/24", "dev", Bridge);
        LabNetwork.Ip(ns, "-6", "addr", "add", InternetGateway6 + "/64", "dev", Bridge, "nodad");
        LabNetwork.Ip(ns, "link", "set", Bridge, "up");
        Attach(ns, EchoNamespace(ns), "ve-echo", Echo4, Echo6);
        for (int n = 1; n <= Customers; n++)
        {
            var (v4, v6) = Customer(n);
            Attach(ns, CustomerNamespace(ns, n), "ve-c" + n.ToString(CultureInfo.InvariantCulture), v4, v6);
        }
    }

    /// <summary>A namespace with lo and eth0 (a veth whose other end, <paramref name="port"/>, is on inet0), its two
    /// addresses and default routes via inet0's.</summary>
    static void Attach(string ns, string host, string port, IPAddress v4, IPAddress v6)
    {
        HostProcess.Run(["ip", "netns", "add", host]);
        LabNetwork.Ip(host, "link", "set", "lo", "up");
        LabNetwork.Ip(ns, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", host);
        LabNetwork.Ip(ns, "link", "set", port, "master", Bridge);
        LabNetwork.Ip(ns, "link", "set", port, "up");
        LabNetwork.Ip(host, "addr", "add", v4 + "/24", "dev", "eth0");
        LabNetwork.Ip(host, "-6", "addr", "add", v6 + "/64", "dev", "eth0", "nodad");
        LabNetwork.Ip(host, "link", "set", "eth0", "up");
        LabNetwork.Ip(host, "route", "add", "default", "via", InternetGateway4.ToString());
        LabNetwork.Ip(host, "-6", "route", "add", "default", "via", InternetGateway6.ToString());
    }

    /// <summary>Deletes the echo and customer namespaces; returns the ones that existed.</summary>
    public static IReadOnlyList<string> Delete(string ns) => [.. Namespaces(ns).Where(LabNetwork.Delete)];

    /// <summary>dnsmasq in the lab namespace sending router advertisements for 2001:db8:64::/64 on br0 (no DNS, no
    /// DHCP addresses: ra-only), so each relay takes its public IPv6 by SLAAC.</summary>
    public static string[] RouterAdvertiser(string ns, string pidFile) => LabNetwork.Exec(ns, [
        "dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null", "--user=root", "--port=0",
        "--pid-file=" + pidFile, "--leasefile-ro", "--interface=" + LabNetwork.Bridge, "--bind-interfaces",
        "--enable-ra", "--dhcp-range=2001:db8:64::,ra-only,64", "--ra-param=" + LabNetwork.Bridge + ",10,1800"]);

    /// <summary>dnsmasq in the echo namespace: authoritative for <see cref="EchoName"/> (A and AAAA), no upstream, no
    /// hosts file, no query log; the relays' upstream resolver.</summary>
    public static string[] EchoDns(string ns, string pidFile) => LabNetwork.Exec(EchoNamespace(ns), [
        "dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null", "--user=root", "--port=53",
        "--pid-file=" + pidFile, "--no-resolv", "--no-hosts", "--bind-interfaces", $"--listen-address={Echo4},{Echo6}",
        "--local=/tabula-lab.test/", "--local-ttl=60", $"--host-record={EchoName},{Echo4},{Echo6}"]);

    /// <summary>Every management service a relay can reach (they must be unreachable through the tunnel).</summary>
    public static IReadOnlyList<string> PrivateEndpoints =>
        [$"{LabNetwork.HostAddress}:{LabRunner.ProvisioningPort}", $"{LabNetwork.HostAddress}:{LabRunner.FleetPort}"];

    /// <summary>
    /// The fleet controller's options for the relays' upstream resolvers: the echo host's dnsmasq on both families
    /// (the only place the lab passes them; the relay image never holds a resolver).
    /// </summary>
    public static IReadOnlyList<string> FleetResolverArguments => ["--relay-resolver", Echo4.ToString(), "--relay-resolver", Echo6.ToString()];
}

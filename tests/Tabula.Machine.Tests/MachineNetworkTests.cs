using System.Diagnostics;
using System.Text.Json;
using Tabula.Machine.Network;
using Tabula.Packaging;
using Tabula.Testing;

namespace Tabula.Machine.Tests;

/// <summary>
/// The machine layer's network on a real kernel, without QEMU: a namespace with a veth pair, the machine's side found by MAC.
/// Static IPv6 (and IPv4), and DHCP from a real dnsmasq on the other end, which proves the UDP client (SO_BINDTODEVICE,
/// broadcast from 0.0.0.0 before any address exists) and its renewal.
/// </summary>
public sealed class MachineNetworkTests : IDisposable
{
    readonly string root = Directory.CreateTempSubdirectory("tabula-net-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    static (NetworkNamespace Ns, string Mac) Pair()
    {
        var ns = NetworkNamespace.Create("stnet");
        ns.Ip("link", "add", "tva", "type", "veth", "peer", "name", "tvb");
        ns.Ip("link", "set", "tvb", "up");
        string mac = JsonDocument.Parse(ns.Ip("-j", "link", "show", "dev", "tva")).RootElement[0].GetProperty("address").GetString()!;
        return (ns, mac);
    }

    static List<(string, int)> Addresses(NetworkNamespace ns) =>
        JsonDocument.Parse(ns.Ip("-j", "addr", "show", "dev", "tva")).RootElement[0].GetProperty("addr_info").EnumerateArray()
            .Select(i => (i.GetProperty("local").GetString()!, i.GetProperty("prefixlen").GetInt32())).ToList();

    [PrivilegedFact("ip")]
    public void Static_ipv6_address_gateway_and_dns_are_configured_on_the_nic_with_the_configured_mac()
    {
        Prerequisites.Require(needsRoot: true, "ip");
        var (ns, mac) = Pair();
        using (ns)
        {
            var host = HostConfig.Parse(SignedPackagesUtf8($$"""
                {"network_mode": "static", "host_ip": "fd00:7ab::2/64", "gateway": "fd00:7ab::1", "dns": ["fd00:7ab::53"],
                 "network_interfaces": [{"interface_name": "eth0", "mac_address": "{{mac}}"}], "ospkg_pointer": "http://[fd00:7ab::1]/os.json"}
                """));
            var result = ns.RunInside(() => new MachineNetwork(root, (_, _) => { }).Configure(host));

            Assert.Contains("nic=tva", result.Summary);
            Assert.Contains("static address=fd00:7ab::2/64", result.Summary);
            Assert.Contains(("fd00:7ab::2", 64), Addresses(ns));
            Assert.Contains("default via fd00:7ab::1 dev tva", ns.Ip("-6", "route", "show"));
            Assert.Equal("nameserver fd00:7ab::53\n", File.ReadAllText(Path.Combine(root, "etc", "resolv.conf")));
            // A second round (after a failed fetch) finds everything in place and succeeds again.
            Assert.Equal(result, ns.RunInside(() => new MachineNetwork(root, (_, _) => { }).Configure(host)));
        }
    }

    [PrivilegedFact("ip", "dnsmasq")]
    public void Dhcp_lease_from_dnsmasq_gives_address_router_and_resolver()
    {
        Prerequisites.Require(needsRoot: true, "ip", "dnsmasq");
        // The server end lives in a second namespace: with both ends in one, the kernel would pick the server's
        // address as the source of our broadcast (inet_select_addr looks at every device) and the server would drop it.
        using var ns = NetworkNamespace.Create("stcli");
        using var serverNs = NetworkNamespace.Create("stsrv");
        Prerequisites.Run("ip", "link", "add", "tva", "netns", ns.Name, "type", "veth", "peer", "name", "tvb", "netns", serverNs.Name);
        serverNs.Ip("link", "set", "tvb", "up");
        string mac = JsonDocument.Parse(ns.Ip("-j", "link", "show", "dev", "tva")).RootElement[0].GetProperty("address").GetString()!;
        {
            serverNs.Ip("addr", "add", "10.77.0.1/24", "dev", "tvb");
            string leases = Path.Combine(root, "leases");
            var start = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (string a in new[] { "netns", "exec", serverNs.Name, "dnsmasq", "--no-daemon", "--port=0", "--interface=tvb", "--bind-interfaces",
                         "--dhcp-range=10.77.0.50,10.77.0.60,255.255.255.0,1h", "--dhcp-option=3,10.77.0.1", "--dhcp-option=6,10.77.0.53",
                         $"--dhcp-leasefile={leases}", "--no-resolv", "--no-hosts", "--log-dhcp" })
                start.ArgumentList.Add(a);
            using var dnsmasq = Process.Start(start)!;
            try
            {
                var host = HostConfig.Parse(SignedPackagesUtf8($$"""
                    {"network_mode": "dhcp", "network_interfaces": [{"mac_address": "{{mac}}"}], "ospkg_pointer": "http://10.77.0.1/os.json"}
                    """));
                var network = new MachineNetwork(root, (_, _) => { });
                NetworkSetup result;
                try
                {
                    result = ns.RunInside(() => network.Configure(host));
                }
                catch (NetworkException e)
                {
                    dnsmasq.Kill();
                    Assert.Fail($"{e.Error} {e.Message}\ndnsmasq: {dnsmasq.StandardError.ReadToEnd()}{dnsmasq.StandardOutput.ReadToEnd()}");
                    throw;
                }
                Assert.Contains("dhcp server=10.77.0.1 lease=3600s", result.Summary);
                var address = Assert.Single(Addresses(ns), a => a.Item1.StartsWith("10.77.0.", StringComparison.Ordinal));
                Assert.Equal(24, address.Item2);
                Assert.Contains("default via 10.77.0.1 dev tva", ns.Ip("route", "show"));
                Assert.Equal("nameserver 10.77.0.53\n", File.ReadAllText(Path.Combine(root, "etc", "resolv.conf")));

                // The relay renews at T1 with ciaddr set, from the address it now has; dnsmasq extends the same lease.
                var renewed = ns.RunInside(() => network.Renew(result, TimeSpan.FromSeconds(10)));
                Assert.NotNull(renewed);
                Assert.Equal(result.Address, renewed.Address);
                Assert.Equal(3600u, renewed.Lease!.LeaseSeconds);
                Assert.Equal(TimeSpan.FromMinutes(30), renewed.Lease.RenewAfter);
            }
            finally
            {
                dnsmasq.Kill();
                dnsmasq.WaitForExit(5000);
            }
        }
    }

    static byte[] SignedPackagesUtf8(string text) => System.Text.Encoding.UTF8.GetBytes(text);
}

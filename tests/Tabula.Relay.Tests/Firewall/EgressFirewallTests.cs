using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Tabula.Linux;
using Tabula.Linux.Netlink.Netfilter;
using Tabula.Linux.Netlink.Netfilter.Expressions;
using Tabula.Relay.Firewall;

namespace Tabula.Relay.Tests.Firewall;

/// <summary>
/// The egress ruleset on the host kernel, with real packets between veth pairs across the customer, relay and
/// internet namespaces of <see cref="EgressTopology"/>; nft reads the ruleset back independently.
/// </summary>
public sealed class EgressFirewallTests
{
    static string Nft(NetworkNamespace ns, params string[] arguments) => ns.Exec("nft", arguments);

    static EgressApplyOutcome Apply(EgressTopology net, EgressPolicy policy) => net.Relay.RunInside(() => new EgressFirewall().Apply(policy));

    static EgressCounters Counters(EgressTopology net) => net.Relay.RunInside(() => new EgressFirewall().ReadCounters(EgressRuleset.Table));

    /// <summary>Sends one datagram from <paramref name="from"/> to <paramref name="to"/>:<paramref name="port"/>; what the far side saw, or null.</summary>
    static IPEndPoint? Deliver(NetworkNamespace from, IPAddress source, NetworkNamespace toNs, IPAddress to, int port, int timeoutMs = 500)
    {
        using Socket listener = EgressTopology.Udp(toNs, to, port);
        using Socket sender = EgressTopology.Udp(from, source);
        sender.SendTo("tabula"u8.ToArray(), new IPEndPoint(to, port));
        return EgressTopology.Receive(listener, timeoutMs)?.From;
    }

    [PrivilegedFact("ip", "nft")]
    public void Customer_traffic_leaves_with_the_public_address_and_replies_come_back()
    {
        using var net = new EgressTopology();
        Assert.Equal(EgressApplyOutcome.Created, Apply(net, net.Policy()));

        foreach (var (customer, echo, expected) in new[]
        {
            (EgressTopology.Customer1v4, EgressTopology.Echo4, EgressTopology.Public4),
            (EgressTopology.Customer1v6, EgressTopology.Echo6, EgressTopology.Public6),
        })
        {
            using Socket listener = EgressTopology.Udp(net.Internet, echo, 7000);
            using Socket client = EgressTopology.Udp(net.Customer1, customer);
            client.SendTo("hello"u8.ToArray(), new IPEndPoint(echo, 7000));
            var seen = EgressTopology.Receive(listener) ?? throw new Xunit.Sdk.XunitException($"nothing reached {echo}");
            Assert.Equal(expected, seen.From.Address);   // the far side sees the relay's public address (SNAT / NAT66)
            listener.SendTo("reply"u8.ToArray(), seen.From);
            var reply = EgressTopology.Receive(client) ?? throw new Xunit.Sdk.XunitException("the reply did not come back");
            Assert.Equal(echo, reply.From.Address);
        }

        var counters = Counters(net);
        Assert.True(counters.ForwardedPackets >= 4, $"forwarded {counters.ForwardedPackets}");
        Assert.True(counters.NatEntries >= 2, $"NAT entries {counters.NatEntries}");

        // Removing a device flushes its conntrack entries: nothing of 10.64.0.2 is left.
        int deleted = net.Relay.RunInside(() =>
        {
            using var conntrack = ConntrackSocket.Open();
            return conntrack.DeleteByAddress(EgressTopology.Customer1v4);
        });
        Assert.True(deleted >= 1);
        Assert.DoesNotContain(net.Relay.RunInside(() => { using var c = ConntrackSocket.Open(); return c.List(); }),
            e => e.Source.Equals(EgressTopology.Customer1v4));
    }

    [PrivilegedFact("ip", "nft")]
    public void Isolation_drops_customer_to_customer_private_and_relay_traffic_and_counts_it()
    {
        using var net = new EgressTopology();
        // Without the ruleset the relay forwards customer to customer: the test can fail.
        Assert.NotNull(Deliver(net.Customer1, EgressTopology.Customer1v4, net.Customer2, EgressTopology.Customer2v4, 7101));

        Apply(net, net.Policy());
        var before = Counters(net);
        Assert.Null(Deliver(net.Customer1, EgressTopology.Customer1v4, net.Customer2, EgressTopology.Customer2v4, 7102));
        Assert.Null(Deliver(net.Customer1, EgressTopology.Customer1v6, net.Customer2, EgressTopology.Customer2v6, 7103));
        Assert.Null(Deliver(net.Customer1, EgressTopology.Customer1v4, net.Internet, EgressTopology.UplinkPeer4, 7104));   // the link's own subnet
        Assert.Null(Deliver(net.Customer1, EgressTopology.Customer1v4, net.Relay, EgressTopology.Public4, 7105));          // the relay itself
        // The internet (a host on the uplink that routes the pool via the relay) cannot open a connection to a customer.
        Assert.Null(Deliver(net.Internet, EgressTopology.Echo4, net.Customer1, EgressTopology.Customer1v4, 7106));
        Assert.Null(Deliver(net.Internet, EgressTopology.Echo6, net.Customer1, EgressTopology.Customer1v6, 7107));
        // DNS on the gateway is let through to the relay.
        Assert.NotNull(Deliver(net.Customer1, EgressTopology.Customer1v4, net.Relay, IPAddress.Parse("10.64.0.1"), 53));
        Assert.NotNull(Deliver(net.Customer1, EgressTopology.Customer1v6, net.Relay, IPAddress.Parse("fc00:bbbb:bbbb:bb01::1"), 53));

        var after = Counters(net);
        Assert.True(after.IsolationDroppedPackets - before.IsolationDroppedPackets >= 4,
            $"isolation drops {before.IsolationDroppedPackets} -> {after.IsolationDroppedPackets}");
    }

    /// <summary>A TCP connect from inside <paramref name="ns"/> that completes within the timeout (a dropped SYN does not).</summary>
    static bool Connects(NetworkNamespace ns, IPAddress source, IPEndPoint to, int timeoutMs = 700) => ns.RunInside(() =>
    {
        using var socket = new Socket(to.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(source, 0));
        try { return socket.ConnectAsync(to).Wait(timeoutMs) && socket.Connected; }
        catch (AggregateException) { return false; }
    });

    static bool Pings(NetworkNamespace ns, IPAddress to)
    {
        try { ns.Exec("ping", "-c", "1", "-W", "1", to.ToString()); return true; }
        catch (InvalidOperationException) { return false; }
    }

    // The isolation rule: from a pool source the relay itself answers only DNS on its gateway addresses. The two
    // deliberate exceptions, echo to the gateways (AllowGatewayPing: clients ping the gateway to check the tunnel) and IPv6
    // neighbour discovery (needed for IPv6 on the link), are kept; no other TCP or UDP port of the relay answers.
    [PrivilegedFact("ip", "nft", "ping")]
    public void From_the_pool_the_gateway_answers_dns_and_ping_and_no_other_tcp_or_udp_port()
    {
        using var net = new EgressTopology();
        var gateways = new[] { (EgressTopology.Customer1v4, IPAddress.Parse("10.64.0.1")), (EgressTopology.Customer1v6, IPAddress.Parse("fc00:bbbb:bbbb:bb01::1")) };
        int[] ports = [22, 80, 443, 853, 5353, 8080, 8443, 9100, 51820];
        var listeners = new List<Socket>();
        try
        {
            foreach (var (_, gateway) in gateways)
                foreach (int port in ports.Append(53).Append(8019))
                    listeners.Add(net.Relay.RunInside(() =>
                    {
                        var tcp = new Socket(gateway.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                        tcp.Bind(new IPEndPoint(gateway, port));
                        tcp.Listen(8);
                        return tcp;
                    }));
            // Without the ruleset every one of those listeners answers: the test can fail.
            foreach (var (source, gateway) in gateways)
                Assert.True(Connects(net.Customer1, source, new IPEndPoint(gateway, 8080)), $"no TCP to {gateway}:8080 without the ruleset");

            Apply(net, net.Policy());
            var before = Counters(net);
            foreach (var (source, gateway) in gateways)
            {
                foreach (int port in ports)
                {
                    Assert.False(Connects(net.Customer1, source, new IPEndPoint(gateway, port)), $"TCP {gateway}:{port} answered a pool source");
                    Assert.Null(Deliver(net.Customer1, source, net.Relay, gateway, port, timeoutMs: 200));
                }
                Assert.True(Connects(net.Customer1, source, new IPEndPoint(gateway, 53)), $"no TCP DNS on {gateway}");
                Assert.NotNull(Deliver(net.Customer1, source, net.Relay, gateway, 53));
                Assert.True(Pings(net.Customer1, gateway), $"no echo reply from {gateway}");
            }
            var after = Counters(net);
            Assert.True(after.IsolationDroppedPackets - before.IsolationDroppedPackets >= (ulong)(2 * 2 * ports.Length),
                $"isolation drops {before.IsolationDroppedPackets} -> {after.IsolationDroppedPackets}");

            // The attestation service's port (issue 19) is closed until the policy names it; then TCP to it answers on both
            // gateways, and still no other port does.
            foreach (var (source, gateway) in gateways)
                Assert.False(Connects(net.Customer1, source, new IPEndPoint(gateway, 8019)), $"TCP {gateway}:8019 answered without an attestation port");
            Apply(net, net.Policy() with { AttestationPort = 8019 });
            foreach (var (source, gateway) in gateways)
            {
                Assert.True(Connects(net.Customer1, source, new IPEndPoint(gateway, 8019)), $"no TCP to the attestation service on {gateway}");
                Assert.False(Connects(net.Customer1, source, new IPEndPoint(gateway, 8080)), $"TCP {gateway}:8080 answered with an attestation port");
            }

            // The echo exception is the policy's switch: off, the gateways answer no ping either.
            Apply(net, net.Policy() with { AllowGatewayPing = false });
            foreach (var (_, gateway) in gateways)
                Assert.False(Pings(net.Customer1, gateway), $"{gateway} answered a ping with AllowGatewayPing off");
        }
        finally
        {
            foreach (var listener in listeners) listener.Dispose();
        }
    }

    [PrivilegedFact("ip", "nft")]
    public void Ruleset_reads_back_in_nft_json_and_removal_leaves_nothing()
    {
        using var net = new EgressTopology();
        var policy = net.Policy();
        Apply(net, policy);
        Assert.Equal(EgressApplyOutcome.Unchanged, Apply(net, policy));
        net.Relay.RunInside(() => EgressFirewall.ApplySysctls(policy, Sysctl.Proc));
        Assert.Equal("1", net.Relay.Exec("sysctl", "-n", "net.ipv4.conf.up0.rp_filter").Trim());
        Assert.Equal("0", net.Relay.Exec("sysctl", "-n", "net.ipv4.conf.all.send_redirects").Trim());

        using var json = JsonDocument.Parse(Nft(net.Relay, "-j", "list", "ruleset"));
        var items = json.RootElement.GetProperty("nftables").EnumerateArray().ToList();
        var tables = items.Where(i => i.TryGetProperty("table", out _)).Select(i => i.GetProperty("table")).ToList();
        Assert.Equal(("inet", "tabula_relay"), (tables.Single().GetProperty("family").GetString(), tables.Single().GetProperty("name").GetString()));
        var chains = items.Where(i => i.TryGetProperty("chain", out _)).Select(i => i.GetProperty("chain")).ToList();
        Assert.Equal(["forward", "input", "postrouting"], chains.Select(c => c.GetProperty("name").GetString()).Order());
        Assert.Equal("nat", chains.Single(c => c.GetProperty("name").GetString() == "postrouting").GetProperty("type").GetString());
        var blocked = items.Where(i => i.TryGetProperty("set", out var s) && s.GetProperty("name").GetString() == "blocked4")
            .Single().GetProperty("set").GetProperty("elem").EnumerateArray()
            .Select(e => e.GetProperty("prefix")).Select(p => $"{p.GetProperty("addr").GetString()}/{p.GetProperty("len").GetInt32()}").ToList();
        Assert.Contains("100.64.0.0/10", blocked);
        Assert.Contains("203.0.113.0/24", blocked);
        string text = Nft(net.Relay, "list", "ruleset");
        Assert.Contains("snat ip to 203.0.113.1", text);
        Assert.Contains("snat ip6 to 2001:db8:1::1", text);
        Assert.Contains("tcp option maxseg size set rt mtu", text);

        net.Relay.RunInside(() => new EgressFirewall().Remove(EgressRuleset.Table));
        Assert.Equal("", Nft(net.Relay, "list", "ruleset").Trim());
        net.Relay.RunInside(() => new EgressFirewall().Remove(EgressRuleset.Table));   // removing twice is fine
    }

    [PrivilegedFact("ip", "nft")]
    public void Bad_config_is_refused_before_the_kernel_and_a_refused_batch_keeps_the_previous_ruleset()
    {
        using var net = new EgressTopology();
        Assert.Throws<EgressPolicyException>(() => EgressPolicy.FromConfig(net.Config() with { PublicIPv4 = "198.51.100.77" }, net.UplinkAddresses()));
        Assert.Equal("", Nft(net.Relay, "list", "ruleset").Trim());

        var good = EgressRuleset.Build(net.Policy());
        net.Relay.RunInside(() => new EgressFirewall().Apply(good));
        string before = Nft(net.Relay, "list", "ruleset");

        var changed = EgressRuleset.Build(net.Policy(blocked: ["192.0.2.0/24"]));
        var broken = changed with
        {
            Rules = [.. changed.Rules, new NfRule("forward", [.. NfMatch.AddressInSet(AddressFamily.InterNetwork, false, "no_such_set"), new NfVerdictExpression(NfVerdict.Drop)], "broken")],
        };
        var refused = Assert.Throws<EgressFirewallException>(() => net.Relay.RunInside(() => new EgressFirewall().Apply(broken)));
        Assert.Equal(EgressFirewallError.KernelRefused, refused.Reason);
        var cause = Assert.IsType<NfTablesException>(refused.InnerException);
        Assert.Contains("(broken)", cause.Failures.Single().Operation);
        Assert.Equal(before, Nft(net.Relay, "list", "ruleset"));
        Assert.Empty(net.Relay.RunInside(() => { using var nft = NfTablesSocket.Open(); return EgressFirewall.Differences(nft, good); }));
    }

    [PrivilegedFact("ip", "nft")]
    public void Replacing_the_ruleset_under_traffic_opens_no_gap()
    {
        using var net = new EgressTopology();
        Apply(net, net.Policy());
        using Socket listener = EgressTopology.Udp(net.Internet, EgressTopology.Echo4, 7200);
        listener.ReceiveBufferSize = 4 * 1024 * 1024;
        using Socket client = EgressTopology.Udp(net.Customer1, EgressTopology.Customer1v4);
        const int total = 3000;
        var sender = Task.Run(() =>
        {
            byte[] payload = new byte[4];
            for (int i = 0; i < total; i++)
            {
                BitConverter.TryWriteBytes(payload, i);
                client.SendTo(payload, new IPEndPoint(EgressTopology.Echo4, 7200));
                if (i % 10 == 0) Thread.Sleep(1);
            }
        });
        int replaced = 0;
        var clock = Stopwatch.StartNew();
        while (!sender.IsCompleted && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            // Alternate between two policies so every apply is a real replacement.
            var outcome = Apply(net, net.Policy(blocked: replaced % 2 == 0 ? ["192.0.2.0/24"] : null));
            Assert.Equal(EgressApplyOutcome.Replaced, outcome);
            replaced++;
        }
        sender.Wait(TimeSpan.FromSeconds(30));
        var seen = new HashSet<int>();
        while (EgressTopology.Receive(listener, 300) is { } datagram)
            seen.Add(BitConverter.ToInt32(datagram.Data));
        Assert.True(replaced >= 3, $"only {replaced} replacements happened during the stream");
        // A gap in the replacement would drop datagrams at every apply (a datagram leaves every 0.1 ms and the loop
        // replaces the table back to back). Loaded CI runs lost 1-2 of 3000 datagrams with no pattern (socket and
        // veth backlog on a busy host), so a handful is tolerated; a real gap over >= 3 replacements loses far more.
        Assert.True(total - seen.Count <= 3, $"{total - seen.Count} of {total} datagrams lost over {replaced} replacements");
    }
}

using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Tabula.Relay.Dns;
using Tabula.Relay.Tests.Dns.Support;
using static Tabula.Relay.Tests.Dns.Support.DnsNetwork;

namespace Tabula.Relay.Tests.Dns;

/// <summary>One network and one dnsmasq for the class; the names it serves; a unique name for the privacy test.</summary>
public sealed class DnsNetworkFixture : IDisposable
{
    public DnsNetworkFixture()
    {
        if (Prerequisites.Missing(needsRoot: true, "ip", "dnsmasq", "dig", "ss") is not null)
            return;
        Network = new DnsNetwork();
        PrivateLabel = "p" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        try
        {
            Network.StartDnsmasq([Upstream4, Upstream6],
                "--host-record=www.tunnel.test,198.51.100.80,2001:db8:80::80",
                $"--host-record={PrivateLabel}.tunnel.test,198.51.100.81,2001:db8:80::81",
                "--address=/wild.test/198.51.100.82");
        }
        catch
        {
            Network.Dispose();
            throw;
        }
    }

    public DnsNetwork? Network { get; }
    public string PrivateLabel { get; } = "";

    public void Dispose() => Network?.Dispose();
}

/// <summary>
/// The forwarder on real sockets in namespaces, asked by Debian's dig (an independent client) and forwarding to
/// Debian's dnsmasq: both families, UDP and TCP, the cache without its upstream, silence for strangers and on every
/// other address, fresh ids and ports upstream, and no name anywhere in what the process printed or threw.
/// </summary>
public sealed class DnsForwarderNamespaceTests(DnsNetworkFixture fixture) : IClassFixture<DnsNetworkFixture>
{
    static readonly IPEndPoint Dnsmasq4 = new(IPAddress.Parse(Upstream4), 53), Dnsmasq6 = new(IPAddress.Parse(Upstream6), 53);
    DnsNetwork Network => fixture.Network ?? throw new InvalidOperationException("no network (missing prerequisites)");

    sealed record Dig(int ExitCode, string Status, IReadOnlyList<string> Answers, string Text)
    {
        public bool Replied => ExitCode == 0 && Status.Length > 0;
    }

    /// <summary>
    /// Asks with dig. A query that must be answered may wait 10 s: under a loaded CI machine (test projects and QEMU in
    /// parallel on two cores) the forwarder's first, unjitted answer took longer than dig's 2 s once. A query that must
    /// go unanswered (<paramref name="silent"/>) waits 2 s, which is all the silence it needs to show.
    /// </summary>
    static Dig Ask(NetworkNamespace from, string server, string name, string type = "A", string? source = null, bool tcp = false, bool silent = false)
    {
        string wait = silent ? "+time=2" : "+time=10";
        var arguments = new List<string> { "netns", "exec", from.Name, "dig", wait, "+tries=1", "+noall", "+answer", "+comments", $"@{server}", name, type };
        if (source is not null)
            arguments.AddRange(["-b", source]);
        if (tcp)
            arguments.Add("+tcp");
        var result = CommandResult.Run("ip", arguments, TimeSpan.FromSeconds(25));
        string status = Regex.Match(result.Output, @"status: (\w+)") is { Success: true } m ? m.Groups[1].Value : "";
        var answers = result.Output.Split('\n')
            .Select(l => l.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 5 && f[2] == "IN" && f[3] == type)
            .Select(f => f[4]).ToList();
        return new Dig(result.ExitCode, status, answers, result.Output + result.Error);
    }

    [PrivilegedFact("ip", "dnsmasq", "dig", "ss")]
    public async Task A_and_AAAA_are_answered_on_both_gateway_addresses_over_udp_and_tcp()
    {
        await using var forwarder = Network.StartForwarder(Options(Dnsmasq4, Dnsmasq6));
        foreach (string gateway in new[] { Gateway4, Gateway6 })
            foreach (bool tcp in new[] { false, true })
            {
                var a = Ask(Network.Client, gateway, "www.tunnel.test", "A", tcp: tcp);
                Assert.True(a.Status == "NOERROR", a.Text);
                Assert.Equal(["198.51.100.80"], a.Answers);
                var aaaa = Ask(Network.Client, gateway, "WWW.Tunnel.Test", "AAAA", tcp: tcp);
                Assert.Equal(["2001:db8:80::80"], aaaa.Answers);
            }
        var wild = Ask(Network.Client, Gateway6, "deep.name.wild.test");
        Assert.Equal(["198.51.100.82"], wild.Answers);

        var counters = forwarder.Counters;
        Assert.Equal(9, counters.QueriesAnswered);
        Assert.Equal(3, counters.Forwarded);        // www A, www AAAA, the wildcard; the rest from the cache
        Assert.Equal(6, counters.CacheHits);
        Assert.Equal(0, counters.UpstreamFailures);
    }

    [PrivilegedFact("ip", "dnsmasq", "dig", "ss")]
    public async Task Cached_answer_is_served_after_the_upstream_stops()
    {
        const string second = "198.51.100.55";
        Network.AddUpstreamAddress(second);
        var dnsmasq = Network.StartDnsmasq([second], "--host-record=cached.tunnel.test,198.51.100.90", "--host-record=later.tunnel.test,198.51.100.91");
        await using var forwarder = Network.StartForwarder(Options(new IPEndPoint(IPAddress.Parse(second), 53)));

        Assert.Equal(["198.51.100.90"], Ask(Network.Client, Gateway4, "cached.tunnel.test").Answers);
        dnsmasq.Dispose();
        Assert.True(dnsmasq.HasExited);

        var again = Ask(Network.Client, Gateway4, "cached.tunnel.test");
        Assert.Equal(["198.51.100.90"], again.Answers);
        Assert.Equal(["198.51.100.90"], Ask(Network.Client, Gateway6, "cached.tunnel.test", tcp: true).Answers);
        var uncached = Ask(Network.Client, Gateway4, "later.tunnel.test");
        Assert.Equal("SERVFAIL", uncached.Status);            // the upstream really is gone
        Assert.Equal(2, forwarder.Counters.CacheHits);
        Assert.True(forwarder.Counters.UpstreamFailures >= 1);
    }

    [PrivilegedFact("ip", "dnsmasq", "dig", "ss")]
    public async Task Sources_outside_the_pools_get_no_answer_at_all()
    {
        await using var forwarder = Network.StartForwarder(Options(Dnsmasq4));
        Assert.Equal(["198.51.100.80"], Ask(Network.Client, Gateway4, "www.tunnel.test", source: Client4).Answers);

        foreach (bool tcp in new[] { false, true })
        {
            var v4 = Ask(Network.Client, Gateway4, "www.tunnel.test", source: Stranger4, tcp: tcp, silent: true);
            Assert.False(v4.Replied, v4.Text);
            var v6 = Ask(Network.Client, Gateway6, "www.tunnel.test", "AAAA", source: Stranger6, tcp: tcp, silent: true);
            Assert.False(v6.Replied, v6.Text);
        }
        Assert.Equal(4, forwarder.Counters.NotFromPool);
        Assert.Equal(1, forwarder.Counters.QueriesAnswered);
    }

    [PrivilegedFact("ip", "dnsmasq", "dig", "ss")]
    public async Task Nothing_answers_on_any_other_address_of_the_relay()
    {
        await using var forwarder = Network.StartForwarder(Options(Dnsmasq4));
        foreach (var (from, server) in new[] { (Network.Client, RelayLink4), (Network.Client, RelayLink6), (Network.Upstream, RelayPublic4), (Network.Upstream, RelayPublic6) })
            foreach (bool tcp in new[] { false, true })
                Assert.False(Ask(from, server, "www.tunnel.test", tcp: tcp, silent: true).Replied, $"{server} tcp={tcp} answered");

        // An independent reader of what is bound: every listening UDP and TCP socket in the relay namespace is a gateway's port 53.
        foreach (string protocol in new[] { "-lnu", "-lnt" })
        {
            string sockets = Network.Relay.Exec("ss", "-H", protocol);
            var locals = sockets.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3]).Order().ToList();
            Assert.Equal([$"10.64.0.1:53", $"[{Gateway6}]:53"], locals);
        }
        Assert.Equal(0, forwarder.Counters.QueriesAnswered);
    }

    /// <summary>A UDP socket in <paramref name="ns"/> bound to <paramref name="address"/>.</summary>
    static Socket UdpIn(NetworkNamespace ns, string address, int port = 0)
    {
        var ip = IPAddress.Parse(address);
        var socket = ns.RunInside(() => new Socket(ip.AddressFamily, SocketType.Dgram, ProtocolType.Udp));
        socket.Bind(new IPEndPoint(ip, port));
        return socket;
    }

    [PrivilegedFact("ip", "dnsmasq", "dig", "ss")]
    public async Task Upstream_sees_fresh_ids_and_source_ports_never_the_clients_and_a_dead_upstream_is_skipped()
    {
        const string fake = "198.51.100.54";
        Network.AddUpstreamAddress(fake);
        using var upstream = UdpIn(Network.Upstream, fake, 53);
        var seen = new List<(ushort Id, int Port)>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var server = Task.Run(async () =>
        {
            var buffer = new byte[1500];
            while (!stop.IsCancellationRequested)
            {
                var r = await upstream.ReceiveFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0), stop.Token);
                var from = (IPEndPoint)r.RemoteEndPoint;
                lock (seen) seen.Add((BinaryPrimitives.ReadUInt16BigEndian(buffer), from.Port));
                // Echo the question with one A record, TTL 0 (never cached, so every query comes here).
                var reply = buffer[..r.ReceivedBytes];
                reply[2] |= 0x80; reply[3] = 0x80;
                BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(6), 1);
                BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(10), 0);
                int question = 12 + DnsName.Skip(reply, 12) - 12 + 4;
                byte[] answer = [.. reply[..question], 0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 198, 51, 100, 99];
                await upstream.SendToAsync(answer, from, stop.Token);
            }
        });

        // The first upstream refuses (nothing on that port: ICMP port unreachable), the second is the fake.
        await using var forwarder = Network.StartForwarder(Options(new IPEndPoint(IPAddress.Parse(Upstream4), 5353), new IPEndPoint(IPAddress.Parse(fake), 53)));
        using var client = UdpIn(Network.Client, Client4);
        var gateway = new IPEndPoint(IPAddress.Parse(Gateway4), 53);
        var response = new byte[1500];
        for (int i = 0; i < 20; i++)
        {
            await client.SendToAsync(DnsMessages.Query(0x1234, $"n{i}.fake.test"), gateway);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            int n = await client.ReceiveAsync(response, SocketFlags.None, timeout.Token);
            Assert.Equal(0x1234, BinaryPrimitives.ReadUInt16BigEndian(response));
            Assert.Equal(0, response[3] & 0x0F);
            Assert.Equal([198, 51, 100, 99], response[(n - 4)..n]);
        }
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => server);

        lock (seen)
        {
            Assert.Equal(20, seen.Count);
            Assert.DoesNotContain(seen, s => s.Id == 0x1234);
            Assert.True(seen.Select(s => s.Id).Distinct().Count() >= 18, "ids repeat");
            Assert.True(seen.Select(s => s.Port).Distinct().Count() >= 18, "source ports repeat");
        }
        Assert.Equal(1, forwarder.Counters.UpstreamFailures);   // only the first query tried the dead one
        Assert.Equal(20, forwarder.Counters.Forwarded);
    }

    [PrivilegedFact("ip", "dnsmasq", "dig", "ss")]
    public async Task Resolved_name_appears_in_no_console_line_and_no_exception()
    {
        string name = $"{fixture.PrivateLabel}.tunnel.test";
        var captured = new StringWriter();
        var exceptions = new List<string>();
        void Record(object? sender, System.Runtime.ExceptionServices.FirstChanceExceptionEventArgs e)
        {
            lock (exceptions) exceptions.Add(e.Exception.ToString());
        }
        TextWriter stdout = Console.Out, stderr = Console.Error;
        Console.SetOut(captured);
        Console.SetError(captured);
        AppDomain.CurrentDomain.FirstChanceException += Record;
        try
        {
            await using (var forwarder = Network.StartForwarder(Options(new IPEndPoint(IPAddress.Parse(Upstream4), 5353), Dnsmasq4, Dnsmasq6)))
            {
                Assert.Equal(["198.51.100.81"], Ask(Network.Client, Gateway4, name).Answers);
                Assert.Equal(["2001:db8:80::81"], Ask(Network.Client, Gateway6, name, "AAAA", tcp: true).Answers);
                Assert.Equal(["198.51.100.81"], Ask(Network.Client, Gateway6, name.ToUpperInvariant()).Answers);
                Assert.False(Ask(Network.Client, Gateway4, name, source: Stranger4, silent: true).Replied);
                Assert.False(Ask(Network.Client, Gateway4, name, source: Stranger4, tcp: true, silent: true).Replied);
                // Malformed queries carrying the name: trailing bytes (FORMERR), a lying count (FORMERR), a TCP length over the limit.
                using var client = UdpIn(Network.Client, Client4);
                var gateway = new IPEndPoint(IPAddress.Parse(Gateway4), 53);
                byte[] trailing = [.. DnsMessages.Query(1, name), 0xFF];
                byte[] lying = DnsMessages.Query(2, name);
                lying[7] = 3;
                foreach (byte[] bad in new[] { trailing, lying })
                {
                    await client.SendToAsync(bad, gateway);
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                    var reply = new byte[600];
                    await client.ReceiveAsync(reply, SocketFlags.None, timeout.Token);
                    Assert.Equal((int)DnsRcode.FormErr, reply[3] & 0x0F);
                }
                using (var tcp = Network.Client.RunInside(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)))
                {
                    await tcp.ConnectAsync(gateway);
                    await tcp.SendAsync((byte[])[0xFF, 0xFF, .. DnsMessages.Query(3, name)], SocketFlags.None);
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                    try
                    {
                        Assert.Equal(0, await tcp.ReceiveAsync(new byte[10], SocketFlags.None, timeout.Token));   // closed, nothing said
                    }
                    catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
                    {
                        // closed with our bytes unread: the kernel resets instead
                    }
                }
                // A name dnsmasq does not know, so every upstream path runs with the name in flight (dnsmasq without
                // --no-resolv servers refuses it: each upstream fails in turn and the last refusal is passed on).
                var unknown = Ask(Network.Client, Gateway4, "nx-" + name);
                Assert.True(unknown.Replied, unknown.Text);

                var counters = forwarder.Counters;
                Assert.True(counters.Malformed >= 3);
                Assert.Equal(2, counters.NotFromPool);
                Assert.DoesNotContain(fixture.PrivateLabel, counters.ToString(), StringComparison.OrdinalIgnoreCase);
            }
        }
        finally
        {
            AppDomain.CurrentDomain.FirstChanceException -= Record;
            Console.SetOut(stdout);
            Console.SetError(stderr);
        }

        string everything;
        lock (exceptions) everything = captured + "\n" + string.Join("\n", exceptions);
        Assert.True(exceptions.Count > 0, "the failure paths threw nothing: the check saw nothing");
        Assert.DoesNotContain(fixture.PrivateLabel, everything, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Client4, captured.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(Client6, captured.ToString(), StringComparison.OrdinalIgnoreCase);
    }
}

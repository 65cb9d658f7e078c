using System.Diagnostics;
using System.Net.Http.Json;
using Tabula.Fleet.Api;
using Tabula.Machine.Reporting;
using Tabula.Relay.Fleet;
using Tabula.Relay.Serving;
using Tabula.Relay.Tests.Support;
using Tabula.WireGuard.Keys;
using Tabula.WireGuard.Uapi;

namespace Tabula.Relay.Tests;

/// <summary>
/// The agent against the real controller over HTTPS, serving through a real wireguard-go in a network namespace, and a
/// real WireGuard client (another wireguard-go, in a second namespace joined by a veth pair) that completes a
/// handshake through the relay while its key is deployed and fails once it is removed.
/// <code>
///   ns relay: wireguard-go (agent's device) 10.64.0.1/10 ── veth 10.203.0.1/24 ─┐
///   ns client: wireguard-go (customer)  device address/32  ── veth 10.203.0.2/24 ─┘
///   with egress, the client namespace also routes to a far "internet" namespace, which runs dnsmasq (the fleet's
///   relay resolver) and a TCP server that answers the caller's address:
///   ns far: 203.0.113.10/24 via 203.0.113.1 ── veth ── ns client 203.0.113.1/24 (forwarding);  relay: 203.0.113.0/24 via 10.203.0.2
/// </code>
/// </summary>
public sealed partial class RelayAgentTests
{
    static async Task Until(Func<Task<bool>> condition, string what, int seconds = 60)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(seconds)) Assert.Fail($"timed out after {seconds}s waiting for {what}");
            await Task.Delay(50);
        }
    }

    static Task Until(Func<bool> condition, string what, int seconds = 60) => Until(() => Task.FromResult(condition()), what, seconds);

    sealed class Rig : IAsyncDisposable
    {
        public required RelayFiles Files { get; init; }
        public required FleetOverHttps Fleet { get; init; }
        public required NetworkNamespace RelayNs { get; init; }
        public required NetworkNamespace ClientNs { get; init; }
        public required WireGuardGo RelayWg { get; init; }
        public required WireGuardGo ClientWg { get; init; }
        public required RelayAgent Agent { get; init; }
        public required StringWriter Console { get; init; }
        public required RelayLog Log { get; init; }
        public required CancellationTokenSource Stop { get; init; }
        public required Task Running { get; init; }
        public required int Port { get; init; }
        public NetworkNamespace? FarNs { get; init; }
        public IDisposable? FarDns { get; init; }

        public async ValueTask DisposeAsync()
        {
            await Stop.CancelAsync();
            try { await Running; } catch (OperationCanceledException) { }
            await Fleet.DisposeAsync();
            FarDns?.Dispose();
            FarNs?.Dispose();
            ClientWg.Dispose();
            RelayWg.Dispose();
            ClientNs.Dispose();
            RelayNs.Dispose();
            Files.Dispose();
        }
    }

    /// <summary>The agent's real conntrack flush, run where the relay's packets are: inside the relay namespace.</summary>
    sealed class FlushInNamespace(NetworkNamespace ns) : Tabula.Relay.Sync.IConnectionFlush
    {
        readonly Tabula.Relay.Firewall.ConntrackFlush flush = new();
        public int Flush(System.Net.IPAddress ipv4, System.Net.IPAddress ipv6) => ns.RunInside(() => flush.Flush(ipv4, ipv6));
    }

    const string Far = "203.0.113.10", FarName = "far.egress.test", Private = "192.168.77.1";
    const int FarPort = 8080;

    static async Task<Rig> StartAsync(TimeSpan? endpointIdle = null, bool egress = false, int? peerLimit = null,
        Func<CancellationToken, Task>? reboot = null, AttestingRelay? attesting = null)
    {
        var files = new RelayFiles();
        var fleet = await FleetOverHttps.StartAsync(files, egress ? [Far] : null, attesting?.Database, attesting?.Controller);
        var relayNs = NetworkNamespace.Create("trR");
        var clientNs = NetworkNamespace.Create("trC");
        attesting?.ServeDescriptor(clientNs);
        string vethR = $"vr{Environment.ProcessId % 100000}", vethC = $"vc{Environment.ProcessId % 100000}";
        Prerequisites.Run("ip", "link", "add", vethR, "netns", relayNs.Name, "type", "veth", "peer", "name", vethC, "netns", clientNs.Name);
        relayNs.Ip("addr", "add", "10.203.0.1/24", "dev", vethR);
        clientNs.Ip("addr", "add", "10.203.0.2/24", "dev", vethC);
        relayNs.Ip("link", "set", vethR, "up");
        clientNs.Ip("link", "set", vethC, "up");
        NetworkNamespace? farNs = null;
        IDisposable? farDns = null;
        if (egress)
        {
            farNs = NetworkNamespace.Create("trF");
            string vethF = $"vf{Environment.ProcessId % 100000}", vethI = $"vi{Environment.ProcessId % 100000}";
            Prerequisites.Run("ip", "link", "add", vethF, "netns", farNs.Name, "type", "veth", "peer", "name", vethI, "netns", clientNs.Name);
            farNs.Ip("addr", "add", Far + "/24", "dev", vethF);
            clientNs.Ip("addr", "add", "203.0.113.1/24", "dev", vethI);
            farNs.Ip("link", "set", vethF, "up");
            farNs.Ip("link", "set", "lo", "up");
            clientNs.Ip("link", "set", vethI, "up");
            farNs.Ip("route", "add", "default", "via", "203.0.113.1");
            clientNs.Exec("sysctl", "-qw", "net.ipv4.ip_forward=1");
            relayNs.Ip("route", "add", "203.0.113.0/24", "via", "10.203.0.2");
            // A private address behind the far side, routable from the relay: isolation, not routing, must keep customers off it.
            farNs.Ip("addr", "add", Private + "/32", "dev", "lo");
            clientNs.Ip("route", "add", Private + "/32", "via", Far);
            relayNs.Ip("route", "add", Private + "/32", "via", "10.203.0.2");
            farDns = new Tabula.Relay.Tests.Dns.Support.Dnsmasq(farNs, [Far], [$"--host-record={FarName},{Far}"]);
        }
        var relayWg = WireGuardGo.Start(relayNs);
        var clientWg = WireGuardGo.Start(clientNs);

        string name = relayWg.InterfaceName;
        var device = NamespaceRelayDevice.Create(relayNs, name);
        var console = new StringWriter();
        var log = new RelayLog(TextWriter.Synchronized(console), TimeProvider.System);
        var client = new FleetClient(fleet.Address, fleet.Ca, TimeProvider.System);
        var agent = new RelayAgent(client, device, new RelayAgentOptions(files.IdentityKey, fleet.EnrollmentToken, attesting?.PackageDigest ?? files.Digest)
        {
            HealthInterval = TimeSpan.FromMilliseconds(500), AppliedInterval = TimeSpan.FromMilliseconds(200), StaffPollInterval = TimeSpan.FromMilliseconds(200),
            EndpointIdle = endpointIdle ?? TimeSpan.FromMinutes(3), EndpointSweepInterval = TimeSpan.FromMilliseconds(500),
            ConnectionFlush = new FlushInNamespace(relayNs),
            Egress = egress ? new Tabula.Relay.Firewall.RelayEgressOptions(vethR) { InNamespace = work => relayNs.RunInside(work) } : null,
            EgressRetry = TimeSpan.FromMilliseconds(500),
            PeerLimit = peerLimit ?? Tabula.Fleet.Protocol.PeerCapacity.KernelMaxPeers,
            Reboot = reboot, CommandRetry = TimeSpan.FromMilliseconds(300),
            Attestation = attesting?.Options(relayNs),
        }, log, TimeProvider.System);
        if (attesting is not null) await attesting.AllowAsync(fleet);
        var stop = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        return new Rig
        {
            Files = files, Fleet = fleet, RelayNs = relayNs, ClientNs = clientNs, RelayWg = relayWg, ClientWg = clientWg, Agent = agent,
            Console = console, Log = log, Stop = stop, Running = Task.Run(() => agent.RunAsync(stop.Token)), Port = 40000 + Environment.ProcessId % 20000,
            FarNs = farNs, FarDns = farDns,
        };
    }

    static async Task<string> DeployAsync(Rig rig)
    {
        await Until(() => rig.Agent.MachineId is not null && rig.Agent.State == "awaiting", "enrollment");
        await Task.Delay(500);
        Assert.False(rig.Agent.Serving);   // nothing is served before staff say so
        using var staff = rig.Fleet.Client(rig.Fleet.AdminToken);
        string id = rig.Agent.MachineId!;
        var machine = await staff.GetFromJsonAsync($"/api/v1/machines/{id}", FleetJson.Default.MachineView);
        Assert.Contains(machine!.Fingerprint, rig.Console.ToString());   // what staff compare: the console shows the same
        await rig.Fleet.PostAsync(staff, $"/api/v1/machines/{id}/provision", new ProvisionRequest("se-got-wg-001", "se", "Sweden", "got", "Gothenburg",
            "31173", true, "10.203.0.1", null, rig.Port, 100, true, "test rack"), FleetJson.Default.MachineView);
        await rig.Fleet.PostAsync(staff, $"/api/v1/machines/{id}/deploy", new ReasonRequest("burn-in passed"), FleetJson.Default.MachineView);
        await Until(() => rig.Agent.Serving, "the device to come up");
        return id;
    }

    static async Task<(DeviceView Device, string Account, WireGuardKey Key)> AddCustomerDeviceAsync(Rig rig)
    {
        // Accounts are made by staff (anonymous creation needs a voucher by default).
        using var staff = rig.Fleet.Client(rig.Fleet.AdminToken);
        var account = await rig.Fleet.PostAsync(staff, "/api/v1/customers", new CreateAccountRequest(null), FleetJson.Default.AccountView);
        using var customer = rig.Fleet.Client(account.Number, "Token");
        var key = WireGuardKey.GeneratePrivateKey();
        using var publicKey = key.DerivePublicKey();
        var device = await rig.Fleet.PostAsync(customer, "/app/v1/devices", new AddDeviceRequest(publicKey.ToBase64()), FleetJson.Default.DeviceView);
        return (device, account.Number!, key);
    }

    static async Task ConfigureClientAsync(Rig rig, WireGuardKey clientKey, DeviceView device, bool egress = false)
    {
        await ClientSessionAsync(rig, clientKey, egress);
        rig.ClientNs.Ip("addr", "add", device.Ipv4Address + "/32", "dev", rig.ClientWg.InterfaceName);
        rig.ClientNs.Ip("link", "set", rig.ClientWg.InterfaceName, "up");
        rig.ClientNs.Ip("route", "add", "10.64.0.1/32", "dev", rig.ClientWg.InterfaceName);
        if (egress)
        {
            // Only sockets bound to the tunnel use it (the client namespace also routes the far side's traffic in the clear).
            rig.ClientNs.Ip("route", "add", "default", "dev", rig.ClientWg.InterfaceName, "table", "200");
            rig.ClientNs.Ip("rule", "add", "oif", rig.ClientWg.InterfaceName, "lookup", "200");
        }
    }

    /// <summary>(Re)sets the customer's peer for the relay: a fresh client session, whose next packet starts a handshake.</summary>
    static async Task ClientSessionAsync(Rig rig, WireGuardKey clientKey, bool egress = false)
    {
        var control = new UapiWireGuardControl(rig.ClientWg.InterfaceName);
        using var relayKey = new WireGuardKey(rig.Agent.PublicKey);
        await control.ApplyAsync(new Tabula.WireGuard.DeviceUpdate
        {
            PrivateKey = clientKey, ReplacePeers = true,
            Peers = [new Tabula.WireGuard.PeerUpdate
            {
                PublicKey = relayKey, Endpoint = new System.Net.IPEndPoint(System.Net.IPAddress.Parse("10.203.0.1"), rig.Port),
                ReplaceAllowedIps = true, AllowedIps = egress ? [Tabula.WireGuard.AllowedIp.Parse("0.0.0.0/0")] : [Tabula.WireGuard.AllowedIp.Parse("10.64.0.1/32")],
            }],
        });
    }

    /// <summary>Opens a TCP connection from the client namespace through the tunnel (SO_BINDTODEVICE) and reads what the far side saw.</summary>
    static async Task<string?> FarSeesAsync(Rig rig, string host, int port)
    {
        using var socket = rig.ClientNs.RunInside(() =>
        {
            var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            s.SetRawSocketOption(1 /* SOL_SOCKET */, 25 /* SO_BINDTODEVICE */, System.Text.Encoding.ASCII.GetBytes(rig.ClientWg.InterfaceName + "\0"));
            return s;
        });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await socket.ConnectAsync(System.Net.IPAddress.Parse(host), port, timeout.Token);
            var buffer = new byte[64];
            int n = await socket.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None, timeout.Token);
            return System.Text.Encoding.ASCII.GetString(buffer, 0, n);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or OperationCanceledException) { return null; }
    }

    /// <summary>A TCP server in the far namespace that writes each caller's address and closes.</summary>
    static async Task ServeCallerAddressAsync(System.Net.Sockets.Socket listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            using var accepted = await listener.AcceptAsync(ct);
            string seen = ((System.Net.IPEndPoint)accepted.RemoteEndPoint!).Address.ToString();
            await accepted.SendAsync(System.Text.Encoding.ASCII.GetBytes(seen), System.Net.Sockets.SocketFlags.None, ct);
        }
    }

    /// <summary>What <c>wg show IFACE WHAT</c> prints for the relay's device: an independent reader of its peers.</summary>
    static string Wg(Rig rig, string what) => rig.RelayNs.Exec("wg", "show", rig.RelayWg.InterfaceName, what).Trim();

    /// <summary>
    /// Makes the relay namespace track connections (the relay's egress ruleset does, through its ct rules; here one
    /// rule is enough), as `nft` would; the conntrack entries are then read back with `conntrack -L`.
    /// </summary>
    static void TrackConnections(Rig rig)
    {
        rig.RelayNs.Exec("nft", "add", "table", "inet", "tabula_test");
        rig.RelayNs.Exec("nft", "add", "chain", "inet", "tabula_test", "input", "{ type filter hook input priority 0 ; }");
        rig.RelayNs.Exec("nft", "add", "rule", "inet", "tabula_test", "input", "ct", "state", "established,related", "accept");
    }

    static string Conntrack(Rig rig, string address) => rig.RelayNs.Exec("conntrack", "-L", "-s", address);

    static bool Ping(Rig rig)
    {
        try { return rig.ClientNs.Exec("ping", "-c", "1", "-W", "2", "10.64.0.1").Contains("1 received"); }
        catch (Exception) { return false; }
    }

    [PrivilegedFact("wireguard-go", "ip", "ping", "nft", "conntrack")]
    public async Task Enrolls_waits_for_staff_serves_a_customer_and_stops_serving_a_removed_key()
    {
        await using var rig = await StartAsync();
        TrackConnections(rig);
        string machineId = await DeployAsync(rig);
        var relayControl = new UapiWireGuardControl(rig.RelayWg.InterfaceName);
        using (var state = await relayControl.GetAsync())
        {
            Assert.Equal(rig.Agent.PublicKey, state.PublicKey!.Bytes.ToArray());
            Assert.Equal(rig.Port, state.ListenPort);
            Assert.Empty(state.Peers);
        }

        var (device, account, clientKey) = await AddCustomerDeviceAsync(rig);
        using var _ = clientKey;
        var added = Stopwatch.StartNew();
        await Until(() => rig.Agent.Sync.AppliedRevision >= device.Revision, "the add to be applied");
        added.Stop();
        using (var state = await relayControl.GetAsync())
        {
            var peer = Assert.Single(state.Peers);
            Assert.Equal(device.PublicKey, peer.PublicKey.ToBase64());
            Assert.Equal([device.Ipv4Address + "/32", device.Ipv6Address + "/128"], peer.AllowedIps.Select(a => a.ToString()).Order().ToArray());
        }

        await ConfigureClientAsync(rig, clientKey, device);
        await Until(() => Ping(rig), "a ping through the tunnel", 30);

        using var staff = rig.Fleet.Client(rig.Fleet.AdminToken);
        await Until(async () => (await staff.GetFromJsonAsync($"/api/v1/revisions/{device.Revision}/applied", FleetJson.Default.AppliedView))!.Applied == 1,
            "the applied revision to be reported");
        await Until(async () => (await staff.GetFromJsonAsync("/api/v1/health", FleetJson.Default.ListHealthView))!
            .Any(h => h.MachineId == machineId && h.Peers == 1 && h.HandshakesLastMinute == 1 && h.RxBytes > 0
                      && h.HandshakesLast3Minutes == 1 && h.UptimeSeconds >= 0 && h.AgentVersion == RelayMachine.Version), "a health report with the handshake");

        // The customer's pings are tracked connections of its tunnel address; removing the device flushes them.
        Assert.True(Ping(rig));
        Assert.Contains(device.Ipv4Address, Conntrack(rig, device.Ipv4Address));
        using (var customer = rig.Fleet.Client(account, "Token"))
        {
            using var removed = await customer.DeleteAsync($"/app/v1/devices/{device.Id}");
            Assert.True(removed.IsSuccessStatusCode);
            long revision = (await removed.Content.ReadFromJsonAsync(FleetJson.Default.RevisionResponse))!.Revision;
            await Until(() => rig.Agent.Sync.AppliedRevision >= revision, "the removal to be applied");
        }
        Assert.DoesNotContain(device.Ipv4Address, Conntrack(rig, device.Ipv4Address));   // ICMP entries live 30 s: gone because flushed
        Assert.True(rig.Agent.Sync.Counters.ConnectionsFlushed >= 1);
        Assert.Equal(0, rig.Agent.Sync.Counters.FlushFailures);
        using (var state = await relayControl.GetAsync())
            Assert.Empty(state.Peers);
        // The client's session is gone with the peer: a new handshake is refused, so nothing gets through.
        Assert.False(Ping(rig));
        Assert.False(Ping(rig));

        // Privacy: nothing the agent printed or kept names the customer's key or addresses.
        string printed = rig.Console.ToString() + string.Join('\n', rig.Log.Recent());
        Assert.DoesNotContain(device.PublicKey, printed);
        Assert.DoesNotContain(Convert.ToHexStringLower(Convert.FromBase64String(device.PublicKey)), printed);
        Assert.DoesNotContain(device.Ipv4Address, printed);
        Assert.DoesNotContain(device.Ipv6Address, printed);
        // No line per device change; the health line counts them instead.
        Assert.DoesNotContain(printed.Split('\n'), l => ConsoleMarker.Relay("sync", "add").Matches(l) || ConsoleMarker.Relay("sync", "remove").Matches(l));
        await Until(() => rig.Log.Recent().Any(l => l.Contains(" added=1 removed=1 ") && l.Contains(" flush_failed=0 ")), "a health line counting the add and the remove", 30);
        Console.WriteLine($"device add → applied on the relay in {added.Elapsed.TotalMilliseconds:0} ms");
    }

    [PrivilegedFact("wireguard-go", "ip", "ping", "wg")]
    public async Task Forgets_an_idle_customers_endpoint_keeps_its_peer_and_lets_it_handshake_again()
    {
        await using var rig = await StartAsync(endpointIdle: TimeSpan.FromSeconds(5));
        await DeployAsync(rig);
        var (device, _, clientKey) = await AddCustomerDeviceAsync(rig);
        using var _ = clientKey;
        await Until(() => rig.Agent.Sync.AppliedRevision >= device.Revision, "the add to be applied");
        string expectedIps = string.Join(' ', new[] { device.Ipv4Address + "/32", device.Ipv6Address + "/128" }.Order());
        string AllowedIps() => string.Join(' ', Wg(rig, "allowed-ips").Split('\t', 2)[1].Split(' ', StringSplitOptions.RemoveEmptyEntries).Order());

        await ConfigureClientAsync(rig, clientKey, device);
        await Until(() => Ping(rig), "a ping through the tunnel", 30);
        Assert.StartsWith($"{device.PublicKey}\t10.203.0.2:", Wg(rig, "endpoints"));   // the customer's address, as the kernel keeps it

        // Idle (no packet, so no handshake) for longer than EndpointIdle: the relay forgets where the customer was.
        var idleSince = Stopwatch.StartNew();
        await Until(() => Wg(rig, "endpoints") == $"{device.PublicKey}\t(none)", "the endpoint to be forgotten", 60);
        Assert.True(idleSince.Elapsed >= TimeSpan.FromSeconds(3), $"forgotten after {idleSince.Elapsed}, before the idle time");
        Assert.Equal($"{device.PublicKey}\t0", Wg(rig, "latest-handshakes"));
        Assert.Equal($"{device.PublicKey}\t0\t0", Wg(rig, "transfer"));   // the counters went with it
        Assert.Equal(expectedIps, AllowedIps());                           // the peer is still served, with its addresses
        Assert.True(rig.Agent.Amnesia.Forgotten >= 1);
        int subscriptions = rig.Agent.Sync.Subscriptions;

        // The set is still the controller's: the next delta's hash check passes (a mismatch would resubscribe from 0).
        var (second, _, secondKey) = await AddCustomerDeviceAsync(rig);
        secondKey.Dispose();
        await Until(() => rig.Agent.Sync.AppliedRevision >= second.Revision, "a later add");
        Assert.Equal(subscriptions, rig.Agent.Sync.Subscriptions);

        // A customer coming back (a new session, as its client starts one after 180 s) handshakes again.
        await ClientSessionAsync(rig, clientKey);
        await Until(() => Ping(rig), "a ping after the relay forgot the endpoint", 30);
        Assert.Contains($"{device.PublicKey}\t10.203.0.2:", Wg(rig, "endpoints"));

        string printed = rig.Console.ToString() + string.Join('\n', rig.Log.Recent());
        Assert.DoesNotContain(device.PublicKey, printed);
        Assert.DoesNotContain("10.203.0.2", printed);
        Assert.DoesNotContain(device.Ipv4Address, printed);
        await Until(() => rig.Log.Recent().Any(l => ConsoleMarker.Relay("health").Matches(l) && !l.EndsWith(" forgotten=0")), "a health line counting the forgotten peer", 30);
    }

    [PrivilegedFact("wireguard-go", "ip", "ping")]
    public async Task Endpoint_amnesia_never_adds_back_a_peer_the_fleet_removed_while_it_waited()
    {
        await using var rig = await StartAsync();   // the agent's own amnesia waits 3 min: only the one below sweeps
        await DeployAsync(rig);
        var (device, account, clientKey) = await AddCustomerDeviceAsync(rig);
        using var _ = clientKey;
        await Until(() => rig.Agent.Sync.AppliedRevision >= device.Revision, "the add to be applied");
        await ConfigureClientAsync(rig, clientKey, device);
        await Until(() => Ping(rig), "a ping through the tunnel", 30);
        var control = new UapiWireGuardControl(rig.RelayWg.InterfaceName);
        var amnesia = new Tabula.Relay.Serving.EndpointAmnesia(control, rig.Agent.Sync, TimeSpan.FromSeconds(1), TimeProvider.System);
        await Task.Delay(1500);   // idle for longer than its idle time

        // The gate is held, so the order is: the fleet's removal queues on the gate, then the sweep reads the device
        // (the peer is still there, idle) and queues behind it. Released, the removal lands first.
        var held = new TaskCompletionSource();
        var holding = rig.Agent.Sync.ExclusiveAsync(async () => { await held.Task; return 0; }, CancellationToken.None);
        long removedAt;
        using (var customer = rig.Fleet.Client(account, "Token"))
        {
            using var removed = await customer.DeleteAsync($"/app/v1/devices/{device.Id}");
            removedAt = (await removed.Content.ReadFromJsonAsync(FleetJson.Default.RevisionResponse))!.Revision;
        }
        await Task.Delay(1500);   // the stream delivers the removal in milliseconds; it now waits on the gate
        Assert.True(rig.Agent.Sync.AppliedRevision < removedAt);
        var sweep = amnesia.SweepAsync(CancellationToken.None);
        await Task.Delay(1000);   // the sweep's read, outside the gate
        Assert.False(sweep.IsCompleted);
        held.SetResult();
        await holding;

        Assert.Equal(0, await sweep);   // it saw the stream change the device, read again, and found nobody to forget
        await Until(() => rig.Agent.Sync.AppliedRevision >= removedAt, "the removal to be applied");
        using (var state = await control.GetAsync())
            Assert.Empty(state.Peers);   // not added back
        Assert.Equal(0, amnesia.Forgotten);
    }

    [PrivilegedFact("wireguard-go", "ip")]
    public async Task Keeps_serving_through_a_controller_restart_and_resubscribes_from_its_revision()
    {
        await using var rig = await StartAsync();
        await DeployAsync(rig);
        var (first, _, firstKey) = await AddCustomerDeviceAsync(rig);
        firstKey.Dispose();
        await Until(() => rig.Agent.Sync.AppliedRevision >= first.Revision, "the first add");
        int subscriptions = rig.Agent.Sync.Subscriptions;

        await rig.Fleet.StopAsync();
        await Task.Delay(1500);   // the stream breaks; the agent retries with backoff
        var relayControl = new UapiWireGuardControl(rig.RelayWg.InterfaceName);
        using (var state = await relayControl.GetAsync())
            Assert.Single(state.Peers);   // still serving what it has
        await rig.Fleet.RestartAsync();

        var (second, _, secondKey) = await AddCustomerDeviceAsync(rig);
        secondKey.Dispose();
        await Until(() => rig.Agent.Sync.AppliedRevision >= second.Revision, "an add made after the restart", 90);
        Assert.True(rig.Agent.Sync.Subscriptions > subscriptions);
        using (var state = await relayControl.GetAsync())
            Assert.Equal(2, state.Peers.Count);
        var lines = rig.Console.ToString().Split('\n');
        Assert.Contains(lines, ConsoleMarker.Relay("sync", "resubscribe").Matches);
        // Resumed from its revision: the only snapshot is the first one.
        Assert.Single(lines, ConsoleMarker.Relay("sync", "snapshot").Matches);
    }

    [PrivilegedFact("wireguard-go", "ip", "ping", "dnsmasq", "dig", "sysctl")]
    public async Task Applies_egress_a_customer_reaches_the_far_side_as_the_relay_and_resolves_through_the_gateway()
    {
        await using var rig = await StartAsync(egress: true);
        await DeployAsync(rig);
        var (device, _, clientKey) = await AddCustomerDeviceAsync(rig);
        using var _ = clientKey;
        await Until(() => rig.Agent.Sync.AppliedRevision >= device.Revision, "the add to be applied");
        await ConfigureClientAsync(rig, clientKey, device, egress: true);
        await Until(() => Ping(rig), "a ping through the tunnel", 30);
        await Until(() => rig.Console.ToString().Contains("stage:egress", StringComparison.Ordinal), "the egress stage", 30);

        using var listener = rig.FarNs!.RunInside(() =>
        {
            var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            s.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Parse(Far), FarPort));
            s.Listen(16);
            return s;
        });
        using var stopServer = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var server = ServeCallerAddressAsync(listener, stopServer.Token);

        // NAT: the far side sees the relay's public address (the placement's ipv4_addr_in), never the tunnel address.
        string? seen = null;
        for (int attempt = 0; attempt < 10 && seen is null; attempt++)
            seen = await FarSeesAsync(rig, Far, FarPort);
        Assert.Equal("10.203.0.1", seen);

        // In-tunnel DNS on the gateway, forwarding to the fleet's resolver on the far side.
        string answer = rig.ClientNs.Exec("dig", "+time=2", "+tries=3", "+short", "@10.64.0.1", FarName, "A").Trim();
        Assert.True(answer == Far, $"dig answered \"{answer}\"; relay console:\n{rig.Console}");

        // Isolation: a listener at a private address (192.168.77.1, RFC 1918) that the relay could route to, and that
        // would answer the relay's address, is never reached through the tunnel.
        using var onPrivate = rig.FarNs.RunInside(() =>
        {
            var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            s.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Parse(Private), FarPort));
            s.Listen(16);
            return s;
        });
        var privateServer = ServeCallerAddressAsync(onPrivate, stopServer.Token);
        Assert.Null(await FarSeesAsync(rig, Private, FarPort));

        // Totals in the health report, per relay on /metrics.
        using var anonymous = rig.Fleet.Client();
        await Until(async () =>
        {
            string metrics = await anonymous.GetStringAsync("/metrics");
            return metrics.Split('\n').Any(l => l.StartsWith("tabula_fleet_relay_forwarded_packets{relay=\"se-got-wg-001\"} ", StringComparison.Ordinal) && !l.EndsWith(" 0", StringComparison.Ordinal))
                && metrics.Split('\n').Any(l => l.StartsWith("tabula_fleet_relay_dns_queries_answered{relay=\"se-got-wg-001\"} ", StringComparison.Ordinal) && !l.EndsWith(" 0", StringComparison.Ordinal));
        }, "forwarded packets and DNS answers on /metrics", 30);

        await stopServer.CancelAsync();
        try { await server; } catch (OperationCanceledException) { }
        try { await privateServer; } catch (OperationCanceledException) { }
        string printed = rig.Console.ToString();
        Assert.DoesNotContain(device.Ipv4Address, printed);
        Assert.DoesNotContain(FarName, printed);
        Assert.DoesNotContain(device.PublicKey, printed);
    }
}

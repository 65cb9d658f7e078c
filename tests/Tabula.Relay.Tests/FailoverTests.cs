using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Tabula.Fleet.Api;
using Tabula.Machine.Reporting;
using Tabula.Relay.Fleet;
using Tabula.Relay.Serving;
using Tabula.Relay.Tests.Support;
using Tabula.WireGuard.Keys;
using Tabula.WireGuard.Uapi;
using Xunit.Abstractions;

namespace Tabula.Relay.Tests;

/// <summary>
/// A controller that survives losing an instance (issue 18): two real `tabula fleet serve` processes over one
/// PostgreSQL database, and the real agent (wireguard-go in a namespace) given both URLs. The instance it streams from
/// is killed with SIGKILL while customers add devices through the other; the relay moves to the other instance,
/// resumes from its applied revision, and ends with exactly the database's set, every add applied once.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class FailoverTests(ITestOutputHelper output)
{
    static async Task Until(Func<bool> condition, string what, int seconds = 60)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(seconds)) Assert.Fail($"timed out after {seconds}s waiting for {what}");
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task A_controller_under_another_CA_first_in_the_list_gets_no_request_and_the_relay_moves_on_to_the_pinned_one()
    {
        // Failing over never trusts more: every URL is held to the package's pinned CA, whoever wrote the list
        // (the signed image, or a machine's host configuration). The rogue is a real controller under its own CA.
        using var files = new RelayFiles();
        using var rogueFiles = new RelayFiles();
        await using var real = await FleetOverHttps.StartAsync(files);
        await using var rogue = await FleetOverHttps.StartAsync(rogueFiles);
        var notes = new List<string>();
        using (var client = new FleetClient([rogue.Address, real.Address], real.Ca, TimeProvider.System, notes.Add))
        {
            Assert.Equal(32, (await client.NonceAsync(real.EnrollmentToken, CancellationToken.None)).Length);
            Assert.Equal(real.Address, client.Controller);
        }
        Assert.Contains(notes, n => n.StartsWith($"controller {rogue.Address.Authority} failed", StringComparison.Ordinal));
        using (var only = new FleetClient([rogue.Address], real.Ca, TimeProvider.System))
            Assert.Equal(RelayFailure.Unreachable,
                (await Assert.ThrowsAsync<RelayException>(() => only.NonceAsync(rogue.EnrollmentToken, CancellationToken.None))).Reason);
        // No request reached the rogue's application: the handshake ended first, so it issued no nonce.
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={rogue.DatabaseFile};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        await using var count = connection.CreateCommand();
        count.CommandText = "SELECT COUNT(*) FROM enroll_nonces";
        Assert.Equal(0L, (long)(await count.ExecuteScalarAsync())!);
    }

    [PrivilegedFact("wireguard-go", "ip")]
    public async Task Killed_instance_the_relay_streams_from_it_resumes_on_the_other_from_its_revision_nothing_lost_or_applied_twice()
    {
        using var files = new RelayFiles();
        await using var fleet = await FleetInstances.StartAsync(files, 2);
        if (fleet is null) return;   // no PostgreSQL on this laptop (CI fails instead)
        using var ns = NetworkNamespace.Create("tfo");
        using var wg = WireGuardGo.Start(ns);
        string name = wg.InterfaceName;
        var device = NamespaceRelayDevice.Create(ns, name);
        var console = new StringWriter();
        var log = new RelayLog(TextWriter.Synchronized(console), TimeProvider.System);
        using var client = new FleetClient(fleet.Addresses, fleet.Ca, TimeProvider.System, detail => log.Note("fleet", detail));
        var agent = new RelayAgent(client, device, new RelayAgentOptions(files.IdentityKey, fleet.EnrollmentToken, files.Digest)
        {
            HealthInterval = TimeSpan.FromMilliseconds(500), AppliedInterval = TimeSpan.FromMilliseconds(200), StaffPollInterval = TimeSpan.FromMilliseconds(200),
        }, log, TimeProvider.System);
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var running = Task.Run(() => agent.RunAsync(stop.Token));
        try
        {
            // Deployed through instance 1 while the relay talks to instance 0 (the first of its list).
            await Until(() => agent.MachineId is not null && agent.State == "awaiting", "enrollment");
            using (var staff = fleet.Client(1, fleet.AdminToken))
            {
                (await staff.PostAsJsonAsync($"/api/v1/machines/{agent.MachineId}/provision", new ProvisionRequest("se-got-wg-001", "se", "Sweden", "got",
                    "Gothenburg", "31173", true, "10.203.0.1", null, 51820, 100, true, "failover test"), FleetJson.Default.ProvisionRequest)).EnsureSuccessStatusCode();
                (await staff.PostAsJsonAsync($"/api/v1/machines/{agent.MachineId}/deploy", new ReasonRequest("failover test"), FleetJson.Default.ReasonRequest)).EnsureSuccessStatusCode();
            }
            await Until(() => agent.Serving, "the device to come up");
            Assert.Equal(fleet.Addresses[0], client.Controller);

            var customers = new List<(HttpClient Zero, HttpClient One)>();
            using (var staff = fleet.Client(0, fleet.AdminToken))
                for (int i = 0; i < 10; i++)   // 5 devices each by default: room for every add below
                {
                    var account = await (await staff.PostAsJsonAsync("/api/v1/customers", new CreateAccountRequest(null), FleetJson.Default.CreateAccountRequest))
                        .Content.ReadFromJsonAsync(FleetJson.Default.AccountView);
                    customers.Add((fleet.Client(0, account!.Number, "Token"), fleet.Client(1, account.Number, "Token")));
                }
            int next = 0;
            async Task<long?> AddAsync(int instance)
            {
                var (zero, one) = customers[next++ % customers.Count];
                try
                {
                    using var key = WireGuardKey.GeneratePrivateKey();
                    using var publicKey = key.DerivePublicKey();
                    var response = await (instance == 0 ? zero : one).PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(publicKey.ToBase64()), FleetJson.Default.AddDeviceRequest);
                    return response.StatusCode == HttpStatusCode.Created ? (await response.Content.ReadFromJsonAsync(FleetJson.Default.DeviceView))!.Revision : null;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { return null; }   // its instance was killed mid-request
            }

            // Round 1: the relay streams from instance 0; kill it while a writer adds through both instances.
            for (int i = 0; i < 6; i++) await AddAsync(i % 2);
            var (head, _, _) = await fleet.PeerSetAsync();
            await Until(() => agent.Sync.AppliedRevision == head, "the adds before the kill");
            var first = await KillAndFollowAsync(0, 1);

            // Round 2: instance 0 back, then instance 1 (now the relay's) killed: the list wraps round to instance 0.
            await fleet.StartAsync(0);
            for (int i = 0; i < 4; i++) await AddAsync(i % 2);
            (head, _, _) = await fleet.PeerSetAsync();
            await Until(() => agent.Sync.AppliedRevision == head, "the adds before the second kill");
            var second = await KillAndFollowAsync(1, 0);
            await fleet.StartAsync(1);

            // The relay holds exactly the database's set, each revision applied once, resumed twice without a snapshot.
            var (revision, hash, keys) = await fleet.PeerSetAsync();
            await Until(() => agent.Sync.AppliedRevision == revision, "the last revision");
            Assert.Equal(revision, agent.Sync.PeerCount);                  // adds only: revision r is the r-th device
            var counters = agent.Sync.Counters;
            Assert.Equal(revision, counters.Added);                        // every revision applied once: none twice, none lost
            Assert.Equal(0, counters.Removed);
            using (var state = await new UapiWireGuardControl(name).GetAsync())
                Assert.Equal(keys.Order(StringComparer.Ordinal), state.Peers.Select(p => p.PublicKey.ToBase64()).Order(StringComparer.Ordinal));
            _ = hash;
            var lines = console.ToString().Split('\n');
            Assert.Single(lines, ConsoleMarker.Relay("sync", "snapshot").Matches);   // the first subscription's; the rest resumed
            Assert.Contains(lines, l => l.Contains($"controller {fleet.Addresses[0].Authority} failed", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.Contains($"controller {fleet.Addresses[1].Authority} failed", StringComparison.Ordinal));
            Assert.True(client.Failovers >= 2);
            output.WriteLine($"failover: kill -> first revision applied {first.FirstApplied.TotalMilliseconds:0} ms, -> the device added right after the kill applied " +
                             $"{first.AddApplied.TotalMilliseconds:0} ms (instance 0 killed); {second.FirstApplied.TotalMilliseconds:0} / {second.AddApplied.TotalMilliseconds:0} ms (instance 1 killed)");
            output.WriteLine(console.ToString());

            async Task<(TimeSpan FirstApplied, TimeSpan AddApplied)> KillAndFollowAsync(int victim, int survivor)
            {
                Assert.Equal(fleet.Addresses[victim], client.Controller);
                int subscriptions = agent.Sync.Subscriptions;
                var writer = Task.Run(async () => { for (int i = 0; i < 6; i++) await AddAsync(i % 2 == 0 ? survivor : victim); });
                await Task.Delay(50);
                var clock = Stopwatch.StartNew();
                await fleet.KillAsync(victim);
                long atKill = agent.Sync.AppliedRevision;
                long? during = await AddAsync(survivor);   // the device added during the failover
                Assert.NotNull(during);
                var firstApplied = TimeSpan.Zero;
                await Until(() =>
                {
                    // Applying again: a later subscription (on the survivor) applied a revision past the one held at the kill.
                    if (firstApplied == TimeSpan.Zero && agent.Sync.Subscriptions > subscriptions && agent.Sync.AppliedRevision > atKill)
                        firstApplied = clock.Elapsed;
                    return agent.Sync.AppliedRevision >= during;
                }, "the device added during the failover", 60);
                var addApplied = clock.Elapsed;
                await writer;
                Assert.Equal(fleet.Addresses[survivor], client.Controller);
                return (firstApplied, addApplied);
            }
        }
        finally
        {
            await stop.CancelAsync();
            try { await running; } catch (OperationCanceledException) { }
        }
    }
}

using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Tabula.Fleet.Api;
using Tabula.Fleet.Protocol;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>
/// Rollouts (issue 18) against the real controller (Kestrel, the engine as a hosted service) on SQLite and PostgreSQL, with relays
/// speaking the real /relay/v1 protocol (boot tickets, enrollment, the command long poll and its answer, applied reports): canary
/// then batches, each halt condition (deadline, wrong digest, fleet health), pause/resume/abort, per-location minimum, the pins
/// boot tickets follow, the replays a relay refuses, and the JSON the dashboard reads.
/// </summary>
public abstract class RolloutTests(FleetFixture fleet)
{
    private FleetHost Host => fleet.Host;
    private HttpClient Admin => Host.Client(fleet.AdminToken);
    private HttpClient Operator => Host.Client(fleet.OperatorToken);
    private HttpClient Viewer => Host.Client(fleet.ViewerToken);

    private Task<(string Class, string Old, string New)> ReleasesAsync() => ReleasesAsync(Admin);

    /// <summary>A class of its own per test, with release 1 (current) and release 2 named, both allowed.</summary>
    internal static async Task<(string Class, string Old, string New)> ReleasesAsync(HttpClient Admin)
    {
        string machineClass = "t-" + Guid.NewGuid().ToString("N")[..10], old = Http.NewDigest(), next = Http.NewDigest();
        foreach (var (digest, release) in new[] { (next, 2L), (old, 1L) })
        {
            (await Admin.PostAsJsonAsync($"/api/v1/releases/{machineClass}/current", new SetCurrentReleaseRequest(digest, release, "test"),
                FleetJson.Default.SetCurrentReleaseRequest)).EnsureSuccessStatusCode();
            (await Admin.PostAsJsonAsync("/api/v1/packages/allowed", new AllowPackageRequest(digest, "test"), FleetJson.Default.AllowPackageRequest))
                .EnsureSuccessStatusCode();
        }
        return (machineClass, old, next);
    }

    private async Task<List<RolloutRelay>> RelaysAsync(string machineClass, string digest, int count, string city = "ber")
    {
        var relays = new List<RolloutRelay>();
        for (int i = 0; i < count; i++)
            relays.Add(await new RolloutRelay(Host, fleet.EnrollmentToken, fleet.OperatorToken, machineClass).DeployAsync(digest, city: city));
        return relays;
    }

    private async Task<HttpResponseMessage> StartAsync(StartRolloutRequest request) =>
        await Admin.PostAsJsonAsync("/api/v1/rollouts", request, FleetJson.Default.StartRolloutRequest);

    /// <summary>Starts a rollout that must start (the controller's refusal in the failure message otherwise).</summary>
    private async Task StartedAsync(StartRolloutRequest request)
    {
        using var response = await StartAsync(request);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
    }

    internal static StartRolloutRequest Request(string digest, int? canary = null, int? batch = null, int? maxUnavailable = null, int drain = 0,
        int? perLocationMin = null, int? deadline = null, int? minServing = null) =>
        new("stable", null, digest, canary, batch, maxUnavailable, drain, perLocationMin, deadline, minServing, "roll release 2");

    private Task<RolloutView> LatestAsync() => LatestAsync(Viewer);

    internal static async Task<RolloutView> LatestAsync(HttpClient staff) =>
        (await staff.GetFromJsonAsync("/api/v1/rollouts/latest", FleetJson.Default.RolloutView))!;

    private Task<RolloutView> WaitAsync(Func<RolloutView, bool> condition, string what, TimeSpan? timeout = null) => WaitAsync(Viewer, condition, what, timeout);

    internal static async Task<RolloutView> WaitAsync(HttpClient staff, Func<RolloutView, bool> condition, string what, TimeSpan? timeout = null)
    {
        Task<RolloutView> LatestAsync() => RolloutTests.LatestAsync(staff);
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        RolloutView latest;
        while (!condition(latest = await LatestAsync()))
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"waited for {what}; rollout {latest.State} ({latest.HaltReason}): " +
                                           string.Join(", ", latest.Machines.Select(m => $"{m.Hostname}={m.Step}")));
            await Task.Delay(100);
        }
        return latest;
    }

    internal static string StepOf(RolloutView view, RolloutRelay relay) => view.Machines.Single(m => m.MachineId == relay.MachineId).Step;

    private async Task<List<AuditView>> AuditAsync() => (await Admin.GetFromJsonAsync("/api/v1/audit?limit=1000", FleetJson.Default.ListAuditView))!;

    /// <summary>Leaves nothing open for the next test of the fixture: aborts an open rollout, retires this test's machines.</summary>
    private async Task CleanUpAsync(IEnumerable<RolloutRelay> relays)
    {
        if ((await LatestAsync()).State is "running" or "paused" or "halted")
            (await Operator.PostAsJsonAsync("/api/v1/rollouts/latest/abort", new ReasonRequest("test over"), FleetJson.Default.ReasonRequest)).EnsureSuccessStatusCode();
        foreach (var relay in relays)
            await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/retire", new ReasonRequest("test over"), FleetJson.Default.ReasonRequest);
    }

    [Fact]
    public async Task Canary_then_a_batch_reboots_every_machine_onto_the_target_audits_each_step_and_moves_the_class()
    {
        if (!fleet.Available) return;
        var (machineClass, old, next) = await ReleasesAsync();
        var relays = await RelaysAsync(machineClass, old, 3);
        try
        {
            var response = await StartAsync(Request(next, canary: 1, batch: 2, drain: 1));
            Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
            var started = (await response.Content.ReadFromJsonAsync(FleetJson.Default.RolloutView))!;
            Assert.Equal(("running", next, 2L, 3), (started.State, started.Digest, started.Release!.Value, started.Machines.Count));
            var canary = relays.Single(r => r.MachineId == started.Machines[0].MachineId);
            var rest = relays.Where(r => r != canary).ToList();

            // Only the canary gets a command; a batch machine that reboots meanwhile keeps its release (its ticket names the old one).
            var (command, _) = await canary.AcceptCommandAsync();
            Assert.Equal((next, 2L, 1), (command.TargetSha256, command.TargetRelease, command.DrainSeconds));
            Assert.Null(await rest[0].PollAsync(wait: 0));
            await rest[0].RebootIntoAsync(old);
            Assert.Equal(old, rest[0].TicketDigest);
            var list = await Host.Client().GetFromJsonAsync("/app/v1/relays", FleetJson.Default.RelayList);
            Assert.Contains(list!.Wireguard.Relays, r => r.Hostname == canary.Hostname && !r.Active);   // drained: listed inactive

            await WaitAsync(v => StepOf(v, canary) == "rebooting", "the canary's drain to pass");
            await canary.RebootIntoAsync(next);
            Assert.Equal(next, canary.TicketDigest);   // the controller named the target for the canary
            var afterCanary = await WaitAsync(v => StepOf(v, canary) == "done", "the canary to serve");
            Assert.Equal(3, afterCanary.Machines.Count);

            // The batch: both at once.
            var commands = await Task.WhenAll(rest.Select(r => r.AcceptCommandAsync()));
            Assert.All(commands, c => Assert.Equal(next, c.Payload.TargetSha256));
            var both = await LatestAsync();
            Assert.All(rest, r => Assert.Contains(StepOf(both, r), new[] { "draining", "rebooting" }));
            await WaitAsync(v => rest.All(r => StepOf(v, r) == "rebooting"), "the batch's drain");
            foreach (var r in rest) await r.RebootIntoAsync(next);
            var done = await WaitAsync(v => v.State == "completed", "completion");
            Assert.All(done.Machines, m => Assert.Equal(("done", next, old), (m.Step, m.BootedSha256, m.FromSha256)));
            Assert.All(done.Machines, m => Assert.True(m.StartedAt <= m.FinishedAt));

            var classes = (await Viewer.GetFromJsonAsync("/api/v1/releases", FleetJson.Default.ListReleaseClassView))!;
            var mine = classes.Single(c => c.MachineClass == machineClass);
            Assert.Equal((next, 2L), (mine.CurrentDigest, mine.CurrentRelease!.Value));
            foreach (var r in relays)
                Assert.Equal("deployed", (await Viewer.GetFromJsonAsync($"/api/v1/machines/{r.MachineId}", FleetJson.Default.MachineView))!.State);

            var audit = await AuditAsync();
            string target = $"rollout {done.Id}";
            Assert.Contains(audit, a => a.Action == "rollout.start" && a.Target == target && a.Actor == "alice" && a.Reason == "roll release 2");
            Assert.Contains(audit, a => a.Action == "rollout.complete" && a.Target == target);
            foreach (var r in relays)
            {
                var steps = audit.Where(a => a.Action == "rollout.step" && a.Target == r.MachineId).Select(a => a.Detail![..a.Detail!.IndexOf(':')]).Reverse().ToList();
                Assert.Equal(["pending -> draining", "draining -> rebooting", "rebooting -> returning", "returning -> done"], steps);
                Assert.Contains(audit, a => a.Action == "machine.drain" && a.Target == r.MachineId && a.Actor == $"rollout:{done.Id}");
                Assert.Contains(audit, a => a.Action == "rollout.command-accepted" && a.Target == r.MachineId);
            }
        }
        finally { await CleanUpAsync(relays); }
    }

    [Fact]
    public async Task Latest_rollout_json_has_the_fields_the_dashboard_and_cli_read()
    {
        if (!fleet.Available) return;
        var (machineClass, old, next) = await ReleasesAsync();
        var relays = await RelaysAsync(machineClass, old, 1);
        try
        {
            await StartedAsync(Request(next, maxUnavailable: 50, drain: 5, perLocationMin: 0));
            using var json = JsonDocument.Parse(await Viewer.GetStringAsync("/api/v1/rollouts/latest"));
            var root = json.RootElement;
            foreach (string field in new[] { "id", "channel", "release", "digest", "state", "canary", "batch", "max_unavailable", "drain_seconds",
                         "per_location_min", "created_at", "updated_at", "halt_reason", "machines" })
                Assert.True(root.TryGetProperty(field, out _), field);
            Assert.Equal(JsonValueKind.Null, root.GetProperty("batch").ValueKind);
            Assert.Equal(50, root.GetProperty("max_unavailable").GetInt32());
            var machine = root.GetProperty("machines")[0];
            foreach (string field in new[] { "machine_id", "hostname", "location", "step", "started_at", "finished_at", "from_sha256", "booted_sha256", "reason" })
                Assert.True(machine.TryGetProperty(field, out _), field);
            Assert.Equal("de-ber", machine.GetProperty("location").GetString());

            // Roles and reasons as for other staff actions.
            Assert.Equal(HttpStatusCode.Forbidden, (await Viewer.PostAsJsonAsync("/api/v1/rollouts/latest/pause", new ReasonRequest("x"), FleetJson.Default.ReasonRequest)).StatusCode);
            Assert.Equal(HttpStatusCode.BadRequest, (await Operator.PostAsJsonAsync("/api/v1/rollouts/latest/pause", new ReasonRequest(null), FleetJson.Default.ReasonRequest)).StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, (await Operator.PostAsJsonAsync("/api/v1/rollouts", Request(next), FleetJson.Default.StartRolloutRequest)).StatusCode);
            Assert.Equal(HttpStatusCode.Conflict, (await StartAsync(Request(next))).StatusCode);   // one open rollout at a time
            Assert.Equal(HttpStatusCode.BadRequest, (await StartAsync(Request(next) with { Batch = 2, MaxUnavailable = 10 })).StatusCode);
        }
        finally { await CleanUpAsync(relays); }
    }

    [Fact]
    public async Task A_machine_that_comes_back_on_another_digest_halts_the_rollout_with_the_reason()
    {
        if (!fleet.Available) return;
        var (machineClass, old, next) = await ReleasesAsync();
        var relays = await RelaysAsync(machineClass, old, 2);
        try
        {
            await StartedAsync(Request(next, canary: 1));
            string first = (await LatestAsync()).Machines[0].MachineId;
            var canary = relays.Single(r => r.MachineId == first);
            await canary.AcceptCommandAsync();
            string rogue = Http.NewDigest();
            (await Admin.PostAsJsonAsync("/api/v1/packages/allowed", new AllowPackageRequest(rogue, "test"), FleetJson.Default.AllowPackageRequest)).EnsureSuccessStatusCode();
            await canary.RebootIntoAsync(rogue);
            var halted = await WaitAsync(v => v.State == "halted", "the halt");
            Assert.Contains("came back on digest " + rogue[..12], halted.HaltReason);
            Assert.Equal(("failed", rogue), (StepOf(halted, canary), halted.Machines[0].BootedSha256!));
            Assert.Equal("pending", halted.Machines[1].Step);   // nothing else started
            Assert.Contains(await AuditAsync(), a => a.Action == "rollout.halt" && a.Reason == halted.HaltReason);
        }
        finally { await CleanUpAsync(relays); }
    }

    [Fact]
    public async Task A_machine_that_does_not_come_back_within_the_deadline_halts_the_rollout()
    {
        if (!fleet.Available) return;
        var (machineClass, old, next) = await ReleasesAsync();
        var relays = await RelaysAsync(machineClass, old, 2);
        try
        {
            await StartedAsync(Request(next, canary: 1, deadline: 2));
            string first = (await LatestAsync()).Machines[0].MachineId;
            await relays.Single(r => r.MachineId == first).AcceptCommandAsync();
            var halted = await WaitAsync(v => v.State == "halted", "the deadline");
            Assert.Contains("did not come back within 2 s", halted.HaltReason);
            Assert.Equal(["failed", "pending"], halted.Machines.Select(m => m.Step));
        }
        finally { await CleanUpAsync(relays); }
    }

    [Fact]
    public async Task Fleet_health_dropping_below_the_threshold_halts_the_rollout()
    {
        if (!fleet.Available) return;
        var (machineClass, old, next) = await ReleasesAsync();
        var relays = await RelaysAsync(machineClass, old, 2);
        // A relay of another class: in the fleet's health, not in the rollout.
        var other = await ReleasesAsync();
        var bystander = (await RelaysAsync(other.Class, other.Old, 1))[0];
        try
        {
            await StartedAsync(Request(next, canary: 1, drain: 30, minServing: 100));
            var view = await LatestAsync();
            Assert.Equal(2, view.Machines.Count);
            await relays.Single(r => r.MachineId == view.Machines[0].MachineId).AcceptCommandAsync();
            Assert.Equal("running", (await LatestAsync()).State);   // the rollout's own drained machine does not count against it
            (await Operator.PostAsJsonAsync($"/api/v1/machines/{bystander.MachineId}/drain", new ReasonRequest("disk-less, but its uplink died"),
                FleetJson.Default.ReasonRequest)).EnsureSuccessStatusCode();
            var halted = await WaitAsync(v => v.State == "halted", "the health halt");
            Assert.StartsWith("fleet health:", halted.HaltReason);
        }
        finally { await CleanUpAsync([.. relays, bystander]); }
    }

    [Fact]
    public async Task Pause_stops_new_machines_resume_carries_on_and_abort_is_final()
    {
        if (!fleet.Available) return;
        var (machineClass, old, next) = await ReleasesAsync();
        var relays = await RelaysAsync(machineClass, old, 3);
        try
        {
            await StartedAsync(Request(next, canary: 1));
            var order = (await LatestAsync()).Machines.Select(m => relays.Single(r => r.MachineId == m.MachineId)).ToList();
            await order[0].AcceptCommandAsync();
            var paused = await Operator.PostAsJsonAsync("/api/v1/rollouts/latest/pause", new ReasonRequest("looking at graphs"), FleetJson.Default.ReasonRequest);
            Assert.Equal("paused", (await paused.Content.ReadFromJsonAsync(FleetJson.Default.RolloutView))!.State);
            // The machine already out is still followed back into service; nothing new starts.
            await WaitAsync(v => v.Machines[0].Step == "rebooting", "the canary's drain");
            await order[0].RebootIntoAsync(next);
            await WaitAsync(v => v.Machines[0].Step == "done", "the canary back while paused");
            await Task.Delay(1500);
            Assert.Equal(["done", "pending", "pending"], (await LatestAsync()).Machines.Select(m => m.Step));
            Assert.Null(await order[1].PollAsync(wait: 0));

            long id = (await LatestAsync()).Id;
            Assert.Equal(HttpStatusCode.NotFound, (await Operator.PostAsJsonAsync($"/api/v1/rollouts/{id + 1000}/resume", new ReasonRequest("x"), FleetJson.Default.ReasonRequest)).StatusCode);
            (await Operator.PostAsJsonAsync($"/api/v1/rollouts/{id}/resume", new ReasonRequest("graphs fine"), FleetJson.Default.ReasonRequest)).EnsureSuccessStatusCode();
            await order[1].AcceptCommandAsync();
            var aborted = await Operator.PostAsJsonAsync("/api/v1/rollouts/latest/abort", new ReasonRequest("changed our mind"), FleetJson.Default.ReasonRequest);
            Assert.Equal("aborted", (await aborted.Content.ReadFromJsonAsync(FleetJson.Default.RolloutView))!.State);
            await Task.Delay(1500);
            var final = await LatestAsync();
            Assert.Equal(("aborted", "pending"), (final.State, final.Machines[2].Step));
            Assert.Equal(HttpStatusCode.Conflict, (await Operator.PostAsJsonAsync("/api/v1/rollouts/latest/resume", new ReasonRequest("x"), FleetJson.Default.ReasonRequest)).StatusCode);
            var audit = await AuditAsync();
            foreach (var (action, reason) in new[] { ("rollout.pause", "looking at graphs"), ("rollout.resume", "graphs fine"), ("rollout.abort", "changed our mind") })
                Assert.Contains(audit, a => a.Action == action && a.Reason == reason && a.Actor == "oscar");
        }
        finally { await CleanUpAsync(relays); }
    }

    [Fact]
    public async Task Per_location_minimum_keeps_one_relay_serving_in_each_location()
    {
        if (!fleet.Available) return;
        var (machineClass, old, next) = await ReleasesAsync();
        var relays = await RelaysAsync(machineClass, old, 2, city: "fra");
        try
        {
            await StartedAsync(Request(next, canary: 0, batch: 2, perLocationMin: 1));
            // With no drain a machine passes "draining" within one engine pass; "out" is draining or rebooting, whichever we catch.
            static bool Out(RolloutMachineView m) => m.Step is "draining" or "rebooting" or "returning";
            for (int round = 0; round < 2; round++)
            {
                var view = await WaitAsync(v => v.Machines.Count(Out) == 1, "one machine out");
                var relay = relays.Single(r => r.MachineId == view.Machines.Single(Out).MachineId);
                await relay.AcceptCommandAsync();
                await WaitAsync(v => StepOf(v, relay) == "rebooting", "drain");
                await relay.RebootIntoAsync(next);
                await WaitAsync(v => StepOf(v, relay) == "done", "back");
            }
            Assert.Equal("completed", (await WaitAsync(v => v.State == "completed", "completion")).State);
        }
        finally { await CleanUpAsync(relays); }
    }

    [Fact]
    public async Task A_relay_refuses_a_replayed_tampered_or_foreign_reboot_command()
    {
        if (!fleet.Available) return;
        var (machineClass, old, next) = await ReleasesAsync();
        var relays = await RelaysAsync(machineClass, old, 2);
        try
        {
            await StartedAsync(Request(next, canary: 1, drain: 0));
            var order = (await LatestAsync()).Machines.Select(m => relays.Single(r => r.MachineId == m.MachineId)).ToList();
            var (payload, recorded) = await order[0].AcceptCommandAsync();

            // The same boot, the same command again (a man in the middle replaying it): refused, by sequence.
            var replay = Assert.Throws<RebootCommandException>(() => order[0].Guard.Check(recorded, order[0].MachineId, order[0].Relay.WireGuardKey, DateTimeOffset.UtcNow));
            Assert.Equal(RebootRefusal.Replayed, replay.Reason);
            // Another machine's command: refused by machine id (and its key would not match either).
            Assert.Equal(RebootRefusal.Machine, Assert.Throws<RebootCommandException>(() =>
                order[1].Guard.Check(recorded, order[1].MachineId, order[1].Relay.WireGuardKey, DateTimeOffset.UtcNow)).Reason);
            // Tampered: one byte of the payload changed and re-encoded.
            using (var doc = JsonDocument.Parse(recorded))
            {
                // The target swapped for a package of the attacker's choosing: still a well-formed command.
                byte[] body = System.Text.Encoding.UTF8.GetBytes(System.Text.Encoding.UTF8.GetString(doc.RootElement.GetProperty("payload").GetBytesFromBase64())
                    .Replace(next, old, StringComparison.Ordinal));
                byte[] tampered = System.Text.Encoding.UTF8.GetBytes(
                    $"{{\"payload\":\"{Convert.ToBase64String(body)}\",\"signature\":\"{doc.RootElement.GetProperty("signature").GetString()}\"}}");
                var fresh = new RebootCommandGuard();
                Assert.True(fresh.Learn(order[0].CommandKey, null));
                Assert.Equal(RebootRefusal.Signature, Assert.Throws<RebootCommandException>(() =>
                    fresh.Check(tampered, order[0].MachineId, order[0].Relay.WireGuardKey, DateTimeOffset.UtcNow)).Reason);
            }
            // Expired: the relay's clock past expires_at.
            var later = new RebootCommandGuard();
            Assert.True(later.Learn(order[0].CommandKey, null));
            Assert.Equal(RebootRefusal.Expired, Assert.Throws<RebootCommandException>(() => later.Check(recorded, order[0].MachineId,
                order[0].Relay.WireGuardKey, DateTimeOffset.FromUnixTimeSeconds(payload.ExpiresAt + 1))).Reason);
            // A key that does not verify stboot's boot ticket is not learned (a controller's TLS key alone cannot swap it).
            Assert.False(later.Learn(Tabula.Packaging.Crypto.Ed25519.PublicKeyOf(Tabula.Packaging.Crypto.Ed25519.NewPrivateKey()),
                Tabula.Packaging.BootTicket.Parse(Host.TicketKey.SignTicket(new Tabula.Packaging.BootTicketPayload(order[0].MachineId, new byte[32],
                    Tabula.Packaging.Sha256Digest.Parse(next, "d"), 0, machineClass, 1)))));

            // After the reboot, the next boot (new WireGuard key, new guard) is handed the recorded command: refused as another boot's.
            await order[0].RebootIntoAsync(next);
            var nextBoot = Assert.Throws<RebootCommandException>(() => order[0].Guard.Check(recorded, order[0].MachineId, order[0].Relay.WireGuardKey, DateTimeOffset.UtcNow));
            Assert.Equal(RebootRefusal.Boot, nextBoot.Reason);
            // And the controller does not offer it to the new boot either.
            Assert.Null(await order[0].PollAsync(wait: 0));
            // A refusal is recorded and audited.
            await WaitAsync(v => v.Machines[1].Step is "draining" or "rebooting", "the next machine");   // no drain: "draining" may last one engine pass
            byte[]? second = await order[1].PollAsync();
            long sequence = RebootCommand.Parse(second).Payload.Sequence;
            Assert.Equal(HttpStatusCode.NoContent, (await order[1].AckAsync(sequence, accepted: false, "replayed")).StatusCode);
            Assert.Contains(await AuditAsync(), a => a.Action == "rollout.command-refused" && a.Target == order[1].MachineId && a.Detail!.Contains("refused:replayed"));
        }
        finally { await CleanUpAsync(relays); }
    }
}

/// <summary>
/// A rollout survives its controller: stopped while a machine reboots (SQLite, the same file), and on PostgreSQL one of two
/// instances stopped mid-rollout while both engines run; the other carries on, and no step or command happens twice.
/// </summary>
public sealed class RolloutRestartTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tabula-rollout-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
    }

    internal static async Task<(string Admin, string Operator, string Enrollment)> StaffAsync(FleetHost host)
    {
        var ct = CancellationToken.None;
        string admin = await host.Staff.CreateApiTokenAsync(await host.Staff.CreateStaffAsync("test", "alice", FleetFixture.AdminPassword, StaffRole.Admin, ct), "t", ct);
        string op = await host.Staff.CreateApiTokenAsync(await host.Staff.CreateStaffAsync("test", "oscar", FleetFixture.AdminPassword, StaffRole.Operator, ct), "t", ct);
        return (admin, op, await host.Enrollment.CreateEnrollmentTokenAsync("test", "relays", ct));
    }

    /// <summary>Runs a two-machine rollout (canary 1, then 1), moving to <paramref name="switchTo"/> once the canary is rebooting.</summary>
    internal static async Task RollAcrossAsync(FleetHost first, Func<Task<FleetHost>> switchTo, string admin, string op, string enrollment)
    {
        var (machineClass, old, next) = await RolloutTests.ReleasesAsync(first.Client(admin));
        var relays = new List<RolloutRelay>();
        for (int i = 0; i < 2; i++) relays.Add(await new RolloutRelay(first, enrollment, op, machineClass).DeployAsync(old));
        using (var start = await first.Client(admin).PostAsJsonAsync("/api/v1/rollouts", RolloutTests.Request(next, canary: 1, drain: 0),
                   FleetJson.Default.StartRolloutRequest))
            Assert.True(start.IsSuccessStatusCode, await start.Content.ReadAsStringAsync());
        var order = (await RolloutTests.LatestAsync(first.Client(admin))).Machines.Select(m => relays.Single(r => r.MachineId == m.MachineId)).ToList();
        await order[0].AcceptCommandAsync();
        await RolloutTests.WaitAsync(first.Client(admin), v => v.Machines[0].Step == "rebooting", "the canary rebooting");

        var second = await switchTo();
        foreach (var r in relays) r.Host = second;
        var staff = second.Client(admin);
        await order[0].RebootIntoAsync(next);
        await RolloutTests.WaitAsync(staff, v => v.Machines[0].Step == "done", "the canary back, through the other controller");
        await order[1].AcceptCommandAsync();
        await RolloutTests.WaitAsync(staff, v => v.Machines[1].Step == "rebooting", "the second rebooting");
        await order[1].RebootIntoAsync(next);
        var done = await RolloutTests.WaitAsync(staff, v => v.State == "completed", "completion");
        Assert.All(done.Machines, m => Assert.Equal(("done", next), (m.Step, m.BootedSha256)));

        var audit = (await staff.GetFromJsonAsync("/api/v1/audit?limit=1000", FleetJson.Default.ListAuditView))!;
        foreach (var r in relays)
        {
            var steps = audit.Where(a => a.Action == "rollout.step" && a.Target == r.MachineId).Select(a => a.Detail![..a.Detail!.IndexOf(':')]).Reverse().ToList();
            Assert.Equal(["pending -> draining", "draining -> rebooting", "rebooting -> returning", "returning -> done"], steps);
            Assert.Single(audit, a => a.Action == "rollout.command-accepted" && a.Target == r.MachineId);
        }
        Assert.Single(audit, a => a.Action == "rollout.complete");
    }

    [Fact]
    public async Task A_rollout_carries_on_after_its_controller_restarts()
    {
        string database = "sqlite:" + Path.Combine(dir, "fleet.db");
        var first = await FleetHost.StartAsync(database);
        FleetHost? second = null;
        try
        {
            var (admin, op, enrollment) = await StaffAsync(first);
            await RollAcrossAsync(first, async () =>
            {
                await first.DisposeAsync();   // the controller stops while the canary reboots
                return second = await FleetHost.StartAsync(database);
            }, admin, op, enrollment);
        }
        finally
        {
            if (second is not null) await second.DisposeAsync();
        }
    }
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresRolloutInstanceTests(PostgresFleetFixture fleet) : IClassFixture<PostgresFleetFixture>
{
    [Fact]
    public async Task Two_instances_drive_a_rollout_once_and_the_survivor_finishes_it()
    {
        if (!fleet.Available) return;
        var b = await FleetHost.StartAsync(fleet.Host.Database);
        // Both engines run; each pass takes the rollout's row lock and lease, so one drives. Then b stops mid-rollout (its lease
        // goes with it) and a finishes; the audit shows every step and command once.
        await RolloutRestartTests.RollAcrossAsync(b, async () =>
        {
            await b.DisposeAsync();
            return fleet.Host;
        }, fleet.AdminToken, fleet.OperatorToken, fleet.EnrollmentToken);
    }
}

public sealed class SqliteRolloutTests(SqliteFleetFixture fleet) : RolloutTests(fleet), IClassFixture<SqliteFleetFixture>;

[Collection(PostgresCollection.Name)]
public sealed class PostgresRolloutTests(PostgresFleetFixture fleet) : RolloutTests(fleet), IClassFixture<PostgresFleetFixture>;

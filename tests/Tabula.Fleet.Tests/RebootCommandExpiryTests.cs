using System.Net.Http.Json;
using Tabula.Fleet.Api;
using Tabula.Fleet.Protocol;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>
/// A reboot command that expired before the relay took it (issue 18): the real controller (SQLite, its own instance with reboot
/// commands living 3 s) signs a new one for the same boot, with a new sequence and nonce, and the rollout goes on when the relay
/// takes that; the expired one stays refused. A relay that never takes any fails at the deadline with a reason that says so.
/// </summary>
public sealed class RebootCommandExpiryTests : IAsyncLifetime
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(3);
    private readonly string dir = Directory.CreateTempSubdirectory("tabula-command-expiry-").FullName;
    private FleetHost host = null!;
    private string admin = "", op = "", enrollment = "";

    public async Task InitializeAsync()
    {
        host = await FleetHost.StartAsync("sqlite:" + Path.Combine(dir, "fleet.db"), o => o with { RebootCommandLifetime = Lifetime });
        (admin, op, enrollment) = await RolloutRestartTests.StaffAsync(host);
    }

    public async Task DisposeAsync()
    {
        await host.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
    }

    private async Task<List<AuditView>> AuditAsync() => (await host.Client(admin).GetFromJsonAsync("/api/v1/audit?limit=1000", FleetJson.Default.ListAuditView))!;

    /// <summary>Waits (bounded) for the controller to offer a command with a sequence above <paramref name="after"/>.</summary>
    private static async Task<byte[]> OfferedAsync(RolloutRelay relay, long after)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline)
            if (await relay.PollAsync(after, wait: 2) is { } bytes && RebootCommand.Parse(bytes).Payload.Sequence > after)
                return bytes;
        throw new TimeoutException($"no command above sequence {after} was offered to {relay.Hostname}");
    }

    [Fact]
    public async Task A_command_that_expired_untaken_is_signed_again_with_a_new_sequence_and_nonce_and_the_rollout_completes()
    {
        var (machineClass, old, next) = await RolloutTests.ReleasesAsync(host.Client(admin));
        var relay = await new RolloutRelay(host, enrollment, op, machineClass).DeployAsync(old);
        using (var start = await host.Client(admin).PostAsJsonAsync("/api/v1/rollouts", RolloutTests.Request(next, canary: 1, drain: 0, deadline: 120),
                   FleetJson.Default.StartRolloutRequest))
            Assert.True(start.IsSuccessStatusCode, await start.Content.ReadAsStringAsync());

        // The relay sees its first command but never takes it (its answer is lost, it was reconnecting): it expires.
        byte[] first = await OfferedAsync(relay, 0);
        var firstPayload = RebootCommand.Parse(first).Payload;
        byte[] second = await OfferedAsync(relay, firstPayload.Sequence);
        var secondPayload = RebootCommand.Parse(second).Payload;
        Assert.Equal(firstPayload.Sequence + 1, secondPayload.Sequence);
        Assert.False(firstPayload.Nonce.AsSpan().SequenceEqual(secondPayload.Nonce));
        Assert.Equal((next, relay.MachineId), (secondPayload.TargetSha256, secondPayload.MachineId));
        Assert.True(secondPayload.IssuedAt >= firstPayload.ExpiresAt, $"re-signed at {secondPayload.IssuedAt}, the first expired at {firstPayload.ExpiresAt}");

        // The expired one is refused by the relay's own check; the new one is taken, and the rollout goes on.
        var refused = Assert.Throws<RebootCommandException>(() => relay.Guard.Check(first, relay.MachineId, relay.Relay.WireGuardKey, DateTimeOffset.UtcNow));
        Assert.Equal(RebootRefusal.Expired, refused.Reason);
        var accepted = relay.Guard.Check(second, relay.MachineId, relay.Relay.WireGuardKey, DateTimeOffset.UtcNow);
        relay.Guard.Accept(accepted);
        (await relay.AckAsync(accepted.Sequence, accepted: true, null)).EnsureSuccessStatusCode();
        await RolloutTests.WaitAsync(host.Client(admin), v => v.Machines[0].Step is "rebooting", "the relay rebooting");
        await relay.RebootIntoAsync(next);
        var done = await RolloutTests.WaitAsync(host.Client(admin), v => v.State == "completed", "completion");
        Assert.Equal(("done", next), (done.Machines[0].Step, done.Machines[0].BootedSha256));

        var audit = await AuditAsync();
        Assert.Contains(audit, a => a.Action == "rollout.command-reoffered" && a.Target == relay.MachineId
                                    && a.Detail!.StartsWith($"command {firstPayload.Sequence} expired unanswered; command {secondPayload.Sequence} signed", StringComparison.Ordinal));
        Assert.Single(audit, a => a.Action == "rollout.command-accepted" && a.Target == relay.MachineId);
    }

    [Fact]
    public async Task A_relay_that_never_takes_a_command_fails_at_the_deadline_saying_so()
    {
        var (machineClass, old, next) = await RolloutTests.ReleasesAsync(host.Client(admin));
        var relay = await new RolloutRelay(host, enrollment, op, machineClass).DeployAsync(old);
        using (var start = await host.Client(admin).PostAsJsonAsync("/api/v1/rollouts", RolloutTests.Request(next, canary: 1, drain: 0, deadline: 8),
                   FleetJson.Default.StartRolloutRequest))
            Assert.True(start.IsSuccessStatusCode, await start.Content.ReadAsStringAsync());

        var halted = await RolloutTests.WaitAsync(host.Client(admin), v => v.State == "halted", "the deadline", TimeSpan.FromSeconds(90));
        Assert.Equal("failed", halted.Machines[0].Step);
        Assert.Contains("never took its reboot command within 8 s", halted.HaltReason);
        Assert.Contains("is its agent polling /relay/v1/command?", halted.HaltReason);
        // Offered again while it waited (3 s lifetime, 8 s deadline): more than one command was signed, each audited.
        Assert.Contains(await AuditAsync(), a => a.Action == "rollout.command-reoffered" && a.Target == relay.MachineId);
        // The last one, still within its lifetime, is withdrawn: a failed machine is not rebooted behind the rollout's back.
        Assert.Null(await relay.PollAsync(0, wait: 1));
    }
}

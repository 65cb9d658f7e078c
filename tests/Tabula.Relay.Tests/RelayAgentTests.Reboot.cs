using System.Net.Http.Json;
using Microsoft.Data.Sqlite;
using Tabula.Fleet.Api;
using Tabula.Fleet.Protocol;
using Tabula.Relay.Tests.Support;

namespace Tabula.Relay.Tests;

/// <summary>
/// Reboot commands (issue 18) against the real agent and the real controller over pinned HTTPS: a rollout's command is accepted,
/// the relay keeps serving through the drain and then reboots (the seam records it); a command replayed by a tampered controller
/// database, and one forged with another key, are refused and never reboot the machine again.
/// </summary>
public sealed partial class RelayAgentTests
{
    [PrivilegedFact("wireguard-go", "ip", "nft", "conntrack")]
    public async Task A_rollouts_reboot_command_drains_then_reboots_once_and_a_replayed_or_forged_command_is_refused()
    {
        var reboots = new List<DateTimeOffset>();
        await using var rig = await StartAsync(reboot: _ => { lock (reboots) reboots.Add(DateTimeOffset.UtcNow); return Task.CompletedTask; });
        string id = await DeployAsync(rig);
        using var staff = rig.Fleet.Client(rig.Fleet.AdminToken);
        string target = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        (await staff.PostAsJsonAsync("/api/v1/packages/allowed", new AllowPackageRequest(target, "r2"), FleetJson.Default.AllowPackageRequest)).EnsureSuccessStatusCode();
        var started = await rig.Fleet.PostAsync(staff, "/api/v1/rollouts", new StartRolloutRequest("stable", null, target, 1, null, null, 2, null, null, null, "r2"),
            FleetJson.Default.RolloutView);
        Assert.Equal(id, Assert.Single(started.Machines).MachineId);

        await Until(() => Task.FromResult(rig.Agent.AcceptedReboot is not null), "the command to be accepted");
        var accepted = DateTimeOffset.UtcNow;
        Assert.Equal((target, 2), (rig.Agent.AcceptedReboot!.TargetSha256, rig.Agent.AcceptedReboot.DrainSeconds));
        // Draining: listed inactive, still serving (no connection closed) until the drain is over.
        var list = await rig.Fleet.Client().GetFromJsonAsync("/app/v1/relays", FleetJson.Default.RelayList);
        Assert.False(Assert.Single(list!.Wireguard.Relays).Active);
        Assert.True(rig.Agent.Serving);
        await Until(() => Task.FromResult(reboots.Count == 1), "the reboot after the drain");
        Assert.True(reboots[0] - accepted >= TimeSpan.FromSeconds(1.5), $"rebooted {(reboots[0] - accepted).TotalSeconds:0.0} s after accepting");
        var audit = await staff.GetFromJsonAsync("/api/v1/audit?limit=200", FleetJson.Default.ListAuditView);
        Assert.Contains(audit!, a => a.Action == "rollout.command-accepted" && a.Target == id);

        // The attack: whoever controls the controller's database (or answers in its place) serves the recorded command again.
        await using (var db = new SqliteConnection($"Data Source={rig.Fleet.DatabaseFile};Pooling=False"))
        {
            await db.OpenAsync();
            await using var replay = db.CreateCommand();
            replay.CommandText = "UPDATE reboot_commands SET sequence = sequence + 1, acked_at = NULL, ack = NULL WHERE machine_id = $m";
            replay.Parameters.AddWithValue("$m", id);
            Assert.Equal(1, await replay.ExecuteNonQueryAsync());
        }
        await WakeCommandPollsAsync(rig, staff);
        await Until(() => Task.FromResult(rig.Console.ToString().Contains("reboot command refused reason=replayed", StringComparison.Ordinal)), "the replay refused");

        // A command forged for this very boot with a key of the attacker's: refused by signature, and the refusal is audited.
        byte[] forged = RebootCommand.Sign(new RebootCommandPayload(id, rig.Agent.PublicKey, 9, new byte[16], target, 2, 0, started.Id,
            DateTimeOffset.UtcNow.ToUnixTimeSeconds(), DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 60), Tabula.Packaging.Crypto.Ed25519.NewPrivateKey());
        await using (var db = new SqliteConnection($"Data Source={rig.Fleet.DatabaseFile};Pooling=False"))
        {
            await db.OpenAsync();
            await using var plant = db.CreateCommand();
            plant.CommandText = "UPDATE reboot_commands SET sequence = 9, command = $c, acked_at = NULL, ack = NULL WHERE machine_id = $m";
            plant.Parameters.AddWithValue("$c", Convert.ToBase64String(forged));
            plant.Parameters.AddWithValue("$m", id);
            Assert.Equal(1, await plant.ExecuteNonQueryAsync());
        }
        await WakeCommandPollsAsync(rig, staff);
        await Until(async () => (await staff.GetFromJsonAsync("/api/v1/audit?limit=200", FleetJson.Default.ListAuditView))!
            .Any(a => a.Action == "rollout.command-refused" && a.Target == id && a.Detail!.Contains("refused:signature")), "the forgery refused");
        await Task.Delay(2500);
        Assert.Single(reboots);   // one reboot, for the one genuine command
    }

    /// <summary>A machine change wakes the controller's command long polls (any staff change that signals machine events).</summary>
    static async Task WakeCommandPollsAsync(Rig rig, HttpClient staff) =>
        await rig.Fleet.PostAsync(staff, "/api/v1/releases/wake/current",
            new SetCurrentReleaseRequest(Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)), 1, "wake the polls"),
            FleetJson.Default.ReleaseClassView);
}

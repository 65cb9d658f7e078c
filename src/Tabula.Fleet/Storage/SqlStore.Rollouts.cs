using System.Data.Common;

namespace Tabula.Fleet.Storage;

public sealed partial class SqlStore
{
    private sealed partial class Tx
    {
        private const string RolloutColumns =
            "id, channel, release_number, digest, machine_class, state, canary, batch, max_unavailable, drain_seconds, per_location_min, " +
            "deadline_seconds, min_serving_percent, baseline_serving, created_by, created_at, updated_at, halt_reason";

        private static int I(DbDataReader r, int i) => (int)L(r, i);
        private static int? NI(DbDataReader r, int i) => r.IsDBNull(i) ? null : I(r, i);

        private static Rollout MapRollout(DbDataReader r) => new(L(r, 0), r.GetString(1), NL(r, 2), r.GetString(3), S(r, 4),
            RolloutNames.ParseState(r.GetString(5)), I(r, 6), NI(r, 7), NI(r, 8), I(r, 9), I(r, 10), I(r, 11), I(r, 12), I(r, 13),
            r.GetString(14), L(r, 15), L(r, 16), S(r, 17));

        public async Task<long> InsertRolloutAsync(Rollout o) =>
            (await Query(
                "INSERT INTO rollouts (channel, release_number, digest, machine_class, state, canary, batch, max_unavailable, drain_seconds, " +
                "per_location_min, deadline_seconds, min_serving_percent, baseline_serving, created_by, created_at, updated_at, halt_reason) " +
                "VALUES (@ch, @rel, @d, @cls, @st, @can, @b, @mu, @dr, @plm, @dl, @ms, @bs, @by, @now, @now, NULL) RETURNING id", r => L(r, 0),
                ("ch", o.Channel), ("rel", o.Release), ("d", o.Digest), ("cls", o.MachineClass), ("st", o.State.Name()), ("can", o.Canary),
                ("b", o.Batch), ("mu", o.MaxUnavailablePercent), ("dr", o.DrainSeconds), ("plm", o.PerLocationMin), ("dl", o.DeadlineSeconds),
                ("ms", o.MinServingPercent), ("bs", o.BaselineServing), ("by", o.CreatedBy), ("now", Now))).Single();

        public async Task<Rollout?> GetRolloutAsync(long id, bool lockRow) =>
            (await Query($"SELECT {RolloutColumns} FROM rollouts WHERE id = @id" + (lockRow ? forUpdate : ""), MapRollout, ("id", id))).FirstOrDefault();

        public async Task<Rollout?> LatestRolloutAsync() =>
            (await Query($"SELECT {RolloutColumns} FROM rollouts ORDER BY id DESC LIMIT 1", MapRollout)).FirstOrDefault();

        public async Task<IReadOnlyList<long>> OpenRolloutIdsAsync() =>
            await Query("SELECT id FROM rollouts WHERE state NOT IN ('aborted', 'completed') ORDER BY id", r => L(r, 0));

        public Task UpdateRolloutAsync(Rollout o) => Exec(
            "UPDATE rollouts SET state = @st, halt_reason = @hr, updated_at = @now WHERE id = @id",
            ("id", o.Id), ("st", o.State.Name()), ("hr", o.HaltReason), ("now", Now));

        public async Task<bool> TakeRolloutLeaseAsync(long id, string owner, long until) =>
            await Exec("UPDATE rollouts SET lease_owner = @o, lease_until = @u WHERE id = @id AND (lease_owner IS NULL OR lease_owner = @o OR lease_until < @now)",
                ("id", id), ("o", owner), ("u", until), ("now", Now)) > 0;

        public Task ReleaseRolloutLeasesAsync(string owner) =>
            Exec("UPDATE rollouts SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = @o", ("o", owner));

        private const string RolloutMachineColumns =
            "rollout_id, machine_id, position, hostname, location, step, started_at, finished_at, from_sha256, booted_sha256, reason, enrolled_seen, expect_revision";

        private static RolloutMachine MapRolloutMachine(DbDataReader r) => new(L(r, 0), r.GetString(1), I(r, 2), S(r, 3), S(r, 4),
            RolloutNames.ParseStep(r.GetString(5)), NL(r, 6), NL(r, 7), r.GetString(8), S(r, 9), S(r, 10), NL(r, 11), NL(r, 12));

        public Task InsertRolloutMachineAsync(RolloutMachine m) => Exec(
            $"INSERT INTO rollout_machines ({RolloutMachineColumns}) VALUES (@r, @m, @p, @h, @l, @s, @sa, @fa, @from, @b, @why, @es, @er)",
            RolloutMachineParameters(m));

        public Task UpdateRolloutMachineAsync(RolloutMachine m) => Exec(
            "UPDATE rollout_machines SET step = @s, started_at = @sa, finished_at = @fa, booted_sha256 = @b, reason = @why, enrolled_seen = @es, " +
            "expect_revision = @er, hostname = @h, location = @l, position = @p, from_sha256 = @from WHERE rollout_id = @r AND machine_id = @m",
            RolloutMachineParameters(m));

        private static (string, object?)[] RolloutMachineParameters(RolloutMachine m) =>
        [
            ("r", m.RolloutId), ("m", m.MachineId), ("p", m.Position), ("h", m.Hostname), ("l", m.Location), ("s", m.Step.Name()),
            ("sa", m.StartedAt), ("fa", m.FinishedAt), ("from", m.FromSha256), ("b", m.BootedSha256), ("why", m.Reason),
            ("es", m.EnrolledSeen), ("er", m.ExpectRevision),
        ];

        public async Task<IReadOnlyList<RolloutMachine>> ListRolloutMachinesAsync(long rolloutId) =>
            await Query($"SELECT {RolloutMachineColumns} FROM rollout_machines WHERE rollout_id = @r ORDER BY position", MapRolloutMachine, ("r", rolloutId));

        public Task SetMachineTargetAsync(string machineId, string digest, long rolloutId) => Exec(
            "INSERT INTO machine_targets (machine_id, digest, rollout_id, set_at) VALUES (@m, @d, @r, @now) " +
            "ON CONFLICT (machine_id) DO UPDATE SET digest = @d, rollout_id = @r, set_at = @now",
            ("m", machineId), ("d", digest), ("r", rolloutId), ("now", Now));

        public async Task<string?> GetMachineTargetAsync(string machineId) =>
            (await Query("SELECT digest FROM machine_targets WHERE machine_id = @m", r => r.GetString(0), ("m", machineId))).FirstOrDefault();

        public Task DeleteMachineTargetsAsync(long rolloutId) => Exec("DELETE FROM machine_targets WHERE rollout_id = @r", ("r", rolloutId));

        public async Task<long> NextCommandSequenceAsync(string machineId) =>
            await Scalar("SELECT COALESCE(MAX(sequence), 0) FROM reboot_commands WHERE machine_id = @m", ("m", machineId)) + 1;

        public Task SaveRebootCommandAsync(RebootCommandRecord c) => Exec(
            "INSERT INTO reboot_commands (machine_id, sequence, command, rollout_id, issued_at, expires_at, acked_at, ack) " +
            "VALUES (@m, @s, @c, @r, @i, @e, NULL, NULL) ON CONFLICT (machine_id) DO UPDATE SET sequence = @s, command = @c, rollout_id = @r, " +
            "issued_at = @i, expires_at = @e, acked_at = NULL, ack = NULL",
            ("m", c.MachineId), ("s", c.Sequence), ("c", c.Command), ("r", c.RolloutId), ("i", c.IssuedAt), ("e", c.ExpiresAt));

        public async Task<RebootCommandRecord?> GetRebootCommandAsync(string machineId) =>
            (await Query("SELECT machine_id, sequence, command, rollout_id, issued_at, expires_at, acked_at, ack FROM reboot_commands WHERE machine_id = @m",
                r => new RebootCommandRecord(r.GetString(0), L(r, 1), r.GetString(2), L(r, 3), L(r, 4), L(r, 5), NL(r, 6), S(r, 7)),
                ("m", machineId))).FirstOrDefault();

        public async Task<bool> AckRebootCommandAsync(string machineId, long sequence, string ack) =>
            await Exec("UPDATE reboot_commands SET acked_at = @now, ack = @a WHERE machine_id = @m AND sequence = @s AND acked_at IS NULL",
                ("m", machineId), ("s", sequence), ("a", ack), ("now", Now)) > 0;

        public async Task<long?> AppliedAtAsync(string machineId) =>
            (await Query("SELECT applied_at FROM machines WHERE id = @m", r => NL(r, 0), ("m", machineId))).FirstOrDefault();
    }
}

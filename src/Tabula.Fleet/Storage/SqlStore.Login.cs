namespace Tabula.Fleet.Storage;

public sealed partial class SqlStore
{
    private sealed partial class Tx
    {
        // One statement: the row is created or, when it exists, locked by the no-op update, and returned either way. (An INSERT …
        // DO NOTHING then SELECT … FOR UPDATE finds nothing when a concurrent success deletes the row between the two.)
        public async Task<LoginFailures> LockLoginFailuresAsync(string username) =>
            (await Query("INSERT INTO login_failures (username, failures, last_failed_at, next_attempt_at) VALUES (@u, 0, 0, 0) " +
                         "ON CONFLICT (username) DO UPDATE SET username = excluded.username RETURNING failures, last_failed_at, next_attempt_at",
                r => new LoginFailures(L(r, 0), L(r, 1), L(r, 2)), ("u", username)))[0];

        public Task SetLoginFailuresAsync(string username, LoginFailures f) =>
            Exec("UPDATE login_failures SET failures = @f, last_failed_at = @l, next_attempt_at = @n WHERE username = @u",
                ("f", f.Failures), ("l", f.LastFailedAt), ("n", f.NextAttemptAt), ("u", username));

        public Task ClearLoginFailuresAsync(string username) => Exec("DELETE FROM login_failures WHERE username = @u", ("u", username));

        public Task<int> PruneLoginFailuresAsync(long before) =>
            Exec("DELETE FROM login_failures WHERE last_failed_at < @b AND NOT EXISTS (SELECT 1 FROM staff s WHERE s.username = login_failures.username)",
                ("b", before));

        public Task SetStaffLockedAsync(long staffId, long? lockedAt) =>
            Exec("UPDATE staff SET locked_at = @l WHERE id = @id", ("l", lockedAt), ("id", staffId));

        public async Task<bool> UseTotpStepAsync(long staffId, long step)
        {
            // Steps more than a few behind can never match again (one step of skew): their rows have done their work.
            await Exec("DELETE FROM totp_used WHERE staff_id = @s AND step < @old", ("s", staffId), ("old", step - 4));
            return await Exec("INSERT INTO totp_used (staff_id, step, used_at) VALUES (@s, @step, @now) ON CONFLICT (staff_id, step) DO NOTHING",
                ("s", staffId), ("step", step), ("now", Now)) == 1;
        }
    }
}

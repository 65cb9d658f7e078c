using System.Data.Common;

namespace Tabula.Fleet.Storage;

public sealed partial class SqlStore
{
    private sealed partial class Tx
    {
        public Task ReleaseAddressAsync(long slot, long revision) => Exec(
            "INSERT INTO released_addresses (slot, revision, released_at) VALUES (@s, @r, @now) " +
            "ON CONFLICT (slot) DO UPDATE SET revision = excluded.revision, released_at = excluded.released_at",
            ("s", slot), ("r", revision), ("now", Now));

        public async Task<long?> TakeReleasedAddressAsync(long appliedBy, long releasedBefore)
        {
            var slots = await Query("SELECT slot FROM released_addresses WHERE revision <= @a AND released_at <= @b ORDER BY released_at, slot LIMIT 1",
                r => L(r, 0), ("a", appliedBy), ("b", releasedBefore));
            if (slots.Count == 0) return null;
            await Exec("DELETE FROM released_addresses WHERE slot = @s", ("s", slots[0]));
            return slots[0];
        }

        public Task<long> CountReleasedAddressesAsync() => Scalar("SELECT COUNT(*) FROM released_addresses");

        public async Task<long?> MinAppliedRevisionAsync()
        {
            var row = await Query("SELECT COUNT(*), MIN(applied_revision) FROM machines WHERE state IN ('provisioned', 'deployed', 'draining')",
                r => (L(r, 0), r.IsDBNull(1) ? 0 : L(r, 1)));
            return row[0].Item1 == 0 ? null : row[0].Item2;
        }

        public async Task<(long WindowStart, long Count)> DeviceChurnAsync(long accountId) =>
            (await Query("SELECT churn_window_start, churn_count FROM accounts WHERE id = @id", r => (L(r, 0), L(r, 1)), ("id", accountId)))
            .FirstOrDefault();

        public Task SetDeviceChurnAsync(long accountId, long windowStart, long count) =>
            Exec("UPDATE accounts SET churn_window_start = @w, churn_count = @c WHERE id = @id", ("w", windowStart), ("c", count), ("id", accountId));

        public async Task<long> InsertVoucherAsync(byte[] codeHash, string name, int maxUses, long? expiresAt, string createdBy) =>
            (await Query("INSERT INTO vouchers (code_hash, name, max_uses, uses, created_at, created_by, expires_at) " +
                         "VALUES (@h, @n, @m, 0, @now, @by, @e) RETURNING id",
                r => L(r, 0), ("h", codeHash), ("n", name), ("m", (long)maxUses), ("now", Now), ("by", createdBy), ("e", expiresAt)))[0];

        public async Task<IReadOnlyList<Voucher>> ListVouchersAsync() =>
            await Query("SELECT id, name, max_uses, uses, created_at, created_by, expires_at, revoked_at FROM vouchers ORDER BY id",
                r => new Voucher(L(r, 0), r.GetString(1), (int)L(r, 2), (int)L(r, 3), L(r, 4), r.GetString(5), N(r, 6), N(r, 7)));

        public async Task<bool> RevokeVoucherAsync(long id) =>
            await Exec("UPDATE vouchers SET revoked_at = @now WHERE id = @id AND revoked_at IS NULL", ("now", Now), ("id", id)) == 1;

        // One UPDATE with the checks in its WHERE: two concurrent redemptions of a single-use voucher cannot both count
        // (PostgreSQL re-checks the row after the first commits; SQLite serialises writers).
        public async Task<bool> RedeemVoucherAsync(byte[] codeHash) =>
            await Exec("UPDATE vouchers SET uses = uses + 1 WHERE code_hash = @h AND uses < max_uses AND revoked_at IS NULL " +
                       "AND (expires_at IS NULL OR expires_at > @now)", ("h", codeHash), ("now", Now)) == 1;

        public async Task InsertAccountChallengeAsync(byte[] challenge, long expiresAt)
        {
            await Exec("DELETE FROM account_challenges WHERE expires_at < @now", ("now", Now));
            await Exec("INSERT INTO account_challenges (challenge, expires_at) VALUES (@c, @e)", ("c", challenge), ("e", expiresAt));
        }

        public async Task<bool> ConsumeAccountChallengeAsync(byte[] challenge) =>
            await Exec("DELETE FROM account_challenges WHERE challenge = @c AND expires_at >= @now", ("c", challenge), ("now", Now)) == 1;

        private static long? N(DbDataReader r, int i) => r.IsDBNull(i) ? null : L(r, i);
    }
}

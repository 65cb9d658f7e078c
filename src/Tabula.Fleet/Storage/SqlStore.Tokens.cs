using System.Data.Common;

namespace Tabula.Fleet.Storage;

public sealed partial class SqlStore
{
    private sealed partial class Tx
    {
        // ---- staff tokens
        public async Task<StaffTokenMatch?> FindStaffTokenAsync(byte[] tokenHash) =>
            (await Query($"SELECT {StaffColumns}, t.id, t.kind, t.last_used_at FROM staff_tokens t JOIN staff s ON s.id = t.staff_id " +
                         "WHERE t.token_hash = @h AND (t.expires_at IS NULL OR t.expires_at > @now) AND s.deactivated_at IS NULL",
                r => new StaffTokenMatch(MapStaff(r), L(r, AfterStaffColumns), ParseKind(r.GetString(AfterStaffColumns + 1)), N(r, AfterStaffColumns + 2)), ("h", tokenHash), ("now", Now)))
            .FirstOrDefault();

        public Task TouchStaffTokenAsync(long tokenId, long granularityMs) =>
            Exec("UPDATE staff_tokens SET last_used_at = @now WHERE id = @id AND (last_used_at IS NULL OR last_used_at <= @before)",
                ("now", Now), ("id", tokenId), ("before", Now - granularityMs));

        private const string TokenColumns = "t.id, t.kind, t.name, s.username, s.role, t.created_at, t.expires_at, t.last_used_at";

        private static TokenInfo MapStaffToken(DbDataReader r)
        {
            var kind = ParseKind(r.GetString(1));
            MachineStateNames.TryParseRole(r.GetString(4), out StaffRole role);
            return new TokenInfo($"{kind.Name()}-{L(r, 0)}", kind, r.GetString(2), r.GetString(3), role, L(r, 5), N(r, 6), N(r, 7));
        }

        private static TokenKind ParseKind(string kind) => kind == "session" ? TokenKind.Session : TokenKind.Api;

        public async Task<IReadOnlyList<TokenInfo>> ListStaffTokensAsync() =>
            await Query($"SELECT {TokenColumns} FROM staff_tokens t JOIN staff s ON s.id = t.staff_id ORDER BY t.id", MapStaffToken);

        public async Task<TokenInfo?> RevokeStaffTokenAsync(long id)
        {
            var token = (await Query($"SELECT {TokenColumns} FROM staff_tokens t JOIN staff s ON s.id = t.staff_id WHERE t.id = @id",
                MapStaffToken, ("id", id))).FirstOrDefault();
            return token is not null && await Exec("DELETE FROM staff_tokens WHERE id = @id", ("id", id)) == 1 ? token : null;
        }

        public Task<int> DeleteStaffTokensOfAsync(long staffId) => Exec("DELETE FROM staff_tokens WHERE staff_id = @s", ("s", staffId));

        public async Task<Staff?> GetStaffAsync(string username, bool lockRow) =>
            (await Query($"SELECT {StaffColumns} FROM staff s WHERE s.username = @u{(lockRow ? forUpdate : "")}", MapStaff, ("u", username)))
            .FirstOrDefault();

        public Task SetStaffRoleAsync(long staffId, StaffRole role) =>
            Exec("UPDATE staff SET role = @r WHERE id = @id", ("r", role.Name()), ("id", staffId));

        public Task SetStaffDeactivatedAsync(long staffId, long? deactivatedAt) =>
            Exec("UPDATE staff SET deactivated_at = @d WHERE id = @id", ("d", deactivatedAt), ("id", staffId));

        // PostgreSQL: a second transaction waits on the rows the first locked, then re-reads them, so it counts what the first left.
        public async Task<long> LockActiveAdminsAsync() =>
            (await Query($"SELECT id FROM staff WHERE role = 'admin' AND deactivated_at IS NULL ORDER BY id{forUpdate}", r => L(r, 0))).Count;

        // Sealed like totp_secret (schema 9).
        public async Task<byte[]?> GetTotpPendingAsync(long staffId) =>
            (await Query("SELECT totp_pending FROM staff WHERE id = @id",
                r => r.IsDBNull(0) ? null : store.secrets.OpenTotp(staffId, TotpPendingColumn, B(r, 0)), ("id", staffId))).FirstOrDefault();

        public Task SetTotpPendingAsync(long staffId, byte[]? secret) =>
            Exec("UPDATE staff SET totp_pending = @s WHERE id = @id",
                ("s", secret is null ? null : store.secrets.SealTotp(staffId, TotpPendingColumn, secret)), ("id", staffId));

        // ---- enrollment tokens
        private const string EnrollmentTokenColumns =
            "id, name, created_by, created_at, expires_at, single_use, used_at, machine_id, last_used_at";

        private static EnrollmentToken MapEnrollmentToken(DbDataReader r) =>
            new(L(r, 0), r.GetString(1), r.GetString(2), L(r, 3), N(r, 4), L(r, 5) != 0, N(r, 6), S(r, 7), N(r, 8));

        public async Task<long> InsertEnrollmentTokenAsync(byte[] tokenHash, string name, string createdBy, long? expiresAt, bool singleUse,
            string? machineId) =>
            (await Query("INSERT INTO enroll_tokens (token_hash, name, created_at, created_by, expires_at, single_use, machine_id) " +
                         "VALUES (@h, @n, @now, @by, @e, @su, @m) RETURNING id",
                r => L(r, 0), ("h", tokenHash), ("n", name), ("now", Now), ("by", createdBy), ("e", expiresAt), ("su", singleUse ? 1L : 0L),
                ("m", machineId)))[0];

        public async Task<EnrollmentToken?> GetEnrollmentTokenAsync(byte[] tokenHash) =>
            (await Query($"SELECT {EnrollmentTokenColumns} FROM enroll_tokens WHERE token_hash = @h", MapEnrollmentToken, ("h", tokenHash)))
            .FirstOrDefault();

        public async Task<bool> UseEnrollmentTokenAsync(long id, bool singleUse, string machineId) => singleUse
            ? await Exec("UPDATE enroll_tokens SET used_at = @now, last_used_at = @now, machine_id = COALESCE(machine_id, @m) " +
                         "WHERE id = @id AND used_at IS NULL", ("now", Now), ("m", machineId), ("id", id)) == 1
            : await Exec("UPDATE enroll_tokens SET last_used_at = @now WHERE id = @id", ("now", Now), ("id", id)) == 1;

        public async Task<IReadOnlyList<EnrollmentToken>> ListEnrollmentTokensAsync() =>
            await Query($"SELECT {EnrollmentTokenColumns} FROM enroll_tokens ORDER BY id", MapEnrollmentToken);

        public async Task<EnrollmentToken?> RevokeEnrollmentTokenAsync(long id)
        {
            var token = (await Query($"SELECT {EnrollmentTokenColumns} FROM enroll_tokens WHERE id = @id", MapEnrollmentToken, ("id", id)))
                .FirstOrDefault();
            return token is not null && await Exec("DELETE FROM enroll_tokens WHERE id = @id", ("id", id)) == 1 ? token : null;
        }
    }
}

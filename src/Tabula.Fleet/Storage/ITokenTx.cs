namespace Tabula.Fleet.Storage;

/// <summary>
/// Staff tokens (sessions and API tokens) by id, last use, and the staff changes that must cut them off at once:
/// deactivation and roles (issue 17, "Tokens"). Every authentication reads the database, so a revoked token, a
/// deactivated member or a new role takes effect on the next request, on every controller instance.
/// </summary>
public interface IStaffTokenTx : ITx
{
    /// <summary>The active staff member an unexpired token belongs to, with the token's id and last use; null otherwise.</summary>
    Task<StaffTokenMatch?> FindStaffTokenAsync(byte[] tokenHash);

    /// <summary>Sets the token's last use to now unless it was set less than <paramref name="granularityMs"/> ago.</summary>
    Task TouchStaffTokenAsync(long tokenId, long granularityMs);

    Task<IReadOnlyList<TokenInfo>> ListStaffTokensAsync();

    /// <summary>Deletes the token with <paramref name="id"/>; returns what it was, or null when there is none.</summary>
    Task<TokenInfo?> RevokeStaffTokenAsync(long id);

    /// <summary>Deletes every session and API token of <paramref name="staffId"/>; returns how many.</summary>
    Task<int> DeleteStaffTokensOfAsync(long staffId);

    /// <summary>The staff member, locked until commit (PostgreSQL) when <paramref name="forUpdate"/>.</summary>
    Task<Staff?> GetStaffAsync(string username, bool forUpdate);

    Task SetStaffRoleAsync(long staffId, StaffRole role);
    Task SetStaffDeactivatedAsync(long staffId, long? deactivatedAt);

    /// <summary>Active admins, their rows locked until commit: two admins demoting each other cannot leave none.</summary>
    Task<long> LockActiveAdminsAsync();

    /// <summary>A TOTP secret being enrolled while the current one stays in force (null: none pending).</summary>
    Task<byte[]?> GetTotpPendingAsync(long staffId);
    Task SetTotpPendingAsync(long staffId, byte[]? secret);
}

public sealed record StaffTokenMatch(Staff Staff, long TokenId, TokenKind Kind, long? LastUsedAt);

/// <summary>Enrollment tokens: their options, use and revocation.</summary>
public interface IEnrollmentTokenTx : ITx
{
    Task<long> InsertEnrollmentTokenAsync(byte[] tokenHash, string name, string createdBy, long? expiresAt, bool singleUse, string? machineId);
    Task<EnrollmentToken?> GetEnrollmentTokenAsync(byte[] tokenHash);

    /// <summary>
    /// Records a use. A single-use token is spent by the one UPDATE whose WHERE still finds it unused: of two concurrent
    /// enrollments exactly one gets true (PostgreSQL re-checks the row once the first commits; SQLite serialises writers).
    /// </summary>
    Task<bool> UseEnrollmentTokenAsync(long id, bool singleUse, string machineId);

    Task<IReadOnlyList<EnrollmentToken>> ListEnrollmentTokensAsync();
    Task<EnrollmentToken?> RevokeEnrollmentTokenAsync(long id);
}

namespace Tabula.Fleet.Storage;

/// <summary>
/// Password login's state in the database (issue 17, "Login"), so it holds across controller instances: failed attempts per
/// username as typed (known or not), lockouts, and the TOTP steps each staff member used.
/// </summary>
public interface ILoginTx : ITx
{
    /// <summary>
    /// The failed-login row of <paramref name="username"/>, created empty when missing and locked until commit (PostgreSQL), so two
    /// instances counting attempts at once count both.
    /// </summary>
    Task<LoginFailures> LockLoginFailuresAsync(string username);

    Task SetLoginFailuresAsync(string username, LoginFailures failures);

    /// <summary>Forgets <paramref name="username"/>'s failed logins (a successful login, an unlock).</summary>
    Task ClearLoginFailuresAsync(string username);

    /// <summary>
    /// Deletes the failed-login rows last written before <paramref name="before"/> that name no staff member (guessed usernames);
    /// a staff member's failures stay until a success or an unlock, so they count as consecutive however slow the guessing.
    /// </summary>
    Task<int> PruneLoginFailuresAsync(long before);

    Task SetStaffLockedAsync(long staffId, long? lockedAt);

    /// <summary>
    /// Records that <paramref name="staffId"/> used TOTP step <paramref name="step"/>: true the first time, false when it was used
    /// before. One conditional INSERT on the (staff, step) key: of two concurrent uses exactly one gets true.
    /// </summary>
    Task<bool> UseTotpStepAsync(long staffId, long step);
}

/// <summary>
/// Consecutive failed logins of one username (an attempt counts as failed from its start until it succeeds), when the last one
/// started, and when the next may start (the backoff). Times are Unix milliseconds.
/// </summary>
public readonly record struct LoginFailures(long Failures, long LastFailedAt, long NextAttemptAt);

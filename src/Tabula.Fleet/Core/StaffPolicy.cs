namespace Tabula.Fleet.Core;

/// <summary>
/// The operator's login settings for staff (from <see cref="FleetOptions"/>): whether operators and admins need TOTP, after how
/// many consecutive failures a staff member is locked out, and whether failed logins slow the next attempt (off only with
/// <c>--rate-limits off</c>, which lifts every request budget).
/// </summary>
public sealed record StaffPolicy(bool TotpRequired = true, int LockoutThreshold = FleetLimits.DefaultLoginLockoutThreshold, bool Backoff = true)
{
    public static StaffPolicy From(FleetOptions o)
    {
        if (o.LoginLockoutThreshold is < 1 or > FleetLimits.MaxLoginLockoutThreshold)
            throw new ArgumentException($"the login lockout threshold (--login-lockout) is 1-{FleetLimits.MaxLoginLockoutThreshold} consecutive failures");
        return new StaffPolicy(o.StaffTotp == StaffTotp.Required, o.LoginLockoutThreshold, o.RateLimits.Enabled);
    }

    /// <summary>
    /// Whether <paramref name="staff"/>, holding a password session, may do nothing but enroll TOTP: their role changes the fleet
    /// (operator, admin), TOTP is required and they have none yet. API tokens are not password logins and are not limited.
    /// </summary>
    public bool MustEnrollTotp(Staff staff, TokenKind kind) =>
        TotpRequired && kind == TokenKind.Session && staff.Role >= StaffRole.Operator && !staff.TotpEnabled;
}

/// <summary>
/// Exponential login backoff: after <c>free</c> failures, each further failure doubles the wait before the next attempt,
/// from <see cref="FleetLimits.LoginBackoffBase"/> to at most <see cref="FleetLimits.LoginBackoffMax"/>.
/// </summary>
public static class LoginBackoff
{
    /// <summary>The key of a username in the login's budgets and failures: at most 64 characters are a username; a longer one is its first 65 (still unknown, still limited).</summary>
    public static string Key(string username) =>
        username.Length > FleetLimits.MaxUsernameLength ? username[..(FleetLimits.MaxUsernameLength + 1)] : username;

    /// <summary>The refusal of an attempt that came before its backoff ended, by username or by source: one message for both.</summary>
    public static FleetException TooManyFailures(TimeSpan retry) =>
        new(FleetError.RateLimited, "too many failed logins for this user or from this address; retry later") { RetryAfter = retry };

    public static TimeSpan Delay(long failures, int free)
    {
        long over = failures - free;
        if (over <= 0) return TimeSpan.Zero;
        if (over > 30) return FleetLimits.LoginBackoffMax;
        var delay = FleetLimits.LoginBackoffBase * (1L << (int)(over - 1));
        return delay < FleetLimits.LoginBackoffMax ? delay : FleetLimits.LoginBackoffMax;
    }
}

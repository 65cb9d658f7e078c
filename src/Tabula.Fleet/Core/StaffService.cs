using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Tabula.Fleet.Protocol;
using Tabula.Fleet.Security;
using Tabula.Fleet.Storage;
using Tabula.Packaging.Crypto;

namespace Tabula.Fleet.Core;

/// <summary>
/// Staff accounts: creation, login (password + TOTP), sessions and API tokens, TOTP enrollment, the audit log.
/// Every change runs in one store transaction and is audited in it.
/// </summary>
public sealed class StaffService(IStore store, FleetMetrics metrics, TimeProvider time, ILogger<StaffService> logger, StaffPolicy policy)
{
    /// <summary>
    /// The one answer to a refused login: wrong password, unknown user, wrong, reused or missing TOTP code, locked or deactivated
    /// account. Same status, code and bytes, so nothing about the account (not even that the password was right) shows.
    /// </summary>
    public const string LoginRefused = "wrong username, password or TOTP code";

    public StaffPolicy Policy => policy;

    public async Task<Staff> CreateStaffAsync(string actor, string username, string password, StaffRole role, CancellationToken ct)
    {
        ValidateUsername(username);
        if (password.Length < FleetLimits.MinPasswordLength || password.Length > FleetLimits.MaxPasswordLength)
            throw new FleetException(FleetError.InvalidInput, $"passwords are {FleetLimits.MinPasswordLength} to {FleetLimits.MaxPasswordLength} characters");
        string hash = PasswordHasher.Hash(password);
        return await Write(async tx =>
        {
            if (await tx.GetStaffAsync(username) is not null)
                throw new FleetException(FleetError.Duplicate, $"staff member \"{username}\" exists");
            long id = await tx.InsertStaffAsync(username, role, hash);
            await tx.AuditAsync(actor, "staff.create", username, null, $"role={role.Name()}");
            return new Staff(id, username, role, hash, null, false, 0);
        }, ct);
    }

    private static void ValidateUsername(string username)
    {
        if (username.Length is 0 or > FleetLimits.MaxUsernameLength || !username.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_'))
            throw new FleetException(FleetError.InvalidInput, $"usernames are 1-{FleetLimits.MaxUsernameLength} characters of [A-Za-z0-9._-]");
    }

    /// <summary>
    /// A password login (issue 17, "Login"). In order, the same steps whether or not <paramref name="username"/> names anyone:
    /// <list type="number">
    /// <item>The username's failed-login row (database; every instance sees it) is locked and the attempt counted as a failure;
    /// an attempt before its backoff ended is refused (429 with Retry-After) without a password check.</item>
    /// <item>The password is checked against the member's hash, or a dummy hash of the same cost for an unknown username.</item>
    /// <item>In one transaction with the member's row locked: active, not locked out, password right, and with TOTP a code of a
    /// step after the last used and never used before (one row per used step: of two concurrent logins with one code, one wins).
    /// A success forgets the failures and opens a session; a failure that reaches the lockout threshold locks the member out
    /// (audited staff.lockout).</item>
    /// </list>
    /// Every refusal is <see cref="LoginRefused"/>. An operator or admin without TOTP while it is required gets a session that can
    /// only enroll it (<see cref="StaffPolicy.MustEnrollTotp"/>; the response says so).
    /// </summary>
    public async Task<LoginResult> LoginAsync(string username, string password, string? totp, CancellationToken ct)
    {
        string key = LoginBackoff.Key(username);
        TimeSpan? wait = await Write(async tx =>
        {
            var failures = await tx.LockLoginFailuresAsync(key);
            if (policy.Backoff && tx.Now < failures.NextAttemptAt) return TimeSpan.FromMilliseconds(failures.NextAttemptAt - tx.Now);
            long count = failures.Failures + 1;
            var delay = policy.Backoff ? LoginBackoff.Delay(count, FleetLimits.LoginFreeFailuresPerUsername) : TimeSpan.Zero;
            await tx.SetLoginFailuresAsync(key, new LoginFailures(count, tx.Now, tx.Now + (long)delay.TotalMilliseconds));
            return (TimeSpan?)null;
        }, ct);
        if (wait is { } retry)
        {
            metrics.LoginFailures.Add(1);
            throw LoginBackoff.TooManyFailures(retry);
        }

        var staff = await Read(tx => tx.GetStaffAsync(key), ct);
        // Same work whether or not the user exists: no username enumeration by timing.
        bool passwordOk = password.Length <= FleetLimits.MaxPasswordLength
                          && PasswordHasher.Verify(password, staff?.PasswordHash ?? PasswordHasher.Dummy) && staff is not null;
        var now = time.GetUtcNow();
        var expires = now + FleetLimits.SessionLifetime;
        string token = Secrets.NewToken("tfs");
        var (signedIn, lockedOut) = await Write<(Staff? SignedIn, string? LockedOut)>(async tx =>
        {
            var current = await tx.GetStaffAsync(key, forUpdate: true);
            bool ok = passwordOk && current is { Active: true, Locked: false } && current.PasswordHash == staff!.PasswordHash;
            if (ok && current!.TotpEnabled)
            {
                long? step = totp is null || current.TotpSecret is null ? null : Totp.Match(current.TotpSecret, totp, now);
                ok = step is { } s && s > current.TotpLastStep && await tx.UseTotpStepAsync(current.Id, s);
                if (ok) await tx.SetTotpLastStepAsync(current.Id, step!.Value);
            }
            if (!ok)
            {
                var failures = await tx.LockLoginFailuresAsync(key);   // counted when the attempt started
                if (current is { Locked: false } && failures.Failures >= policy.LockoutThreshold)
                {
                    await tx.SetStaffLockedAsync(current.Id, tx.Now);
                    await tx.AuditAsync("controller", "staff.lockout", current.Username, null,
                        $"{failures.Failures} failed logins in a row; an admin unlocks (tabula fleet staff unlock)");
                    return (null, current.Username);
                }
                return (null, null);
            }
            await tx.ClearLoginFailuresAsync(key);
            bool enrollOnly = policy.MustEnrollTotp(current!, TokenKind.Session);
            await tx.InsertStaffTokenAsync(Secrets.HashToken(token), current!.Id, "session", "dashboard", expires.ToUnixTimeMilliseconds());
            await tx.AuditAsync(current.Username, "staff.login", current.Username, null, enrollOnly ? "TOTP enrollment only" : null);
            return (current, null);
        }, ct);
        if (lockedOut is not null) Log.StaffLockedOut(logger, lockedOut);
        if (signedIn is null)
        {
            metrics.LoginFailures.Add(1);
            throw new FleetException(FleetError.Unauthenticated, LoginRefused);
        }
        Log.StaffLoggedIn(logger, signedIn.Username);
        return new LoginResult(token, signedIn, expires, policy.MustEnrollTotp(signedIn, TokenKind.Session));
    }

    /// <summary>
    /// Lets a locked-out staff member log in again and forgets their failed logins (admins; audited staff.unlock). Also clears the
    /// backoff of one who was not locked out.
    /// </summary>
    public Task<Staff> UnlockAsync(Staff actor, string username, string? reason, CancellationToken ct)
    {
        RequireAdmin(actor, "unlock staff");
        ValidateReason(reason);
        return Write(async tx =>
        {
            await RequireStillAdminAsync(tx, actor);
            var target = await tx.GetStaffAsync(username, forUpdate: true) ?? throw new FleetException(FleetError.NotFound, $"no staff member \"{username}\"");
            var failures = await tx.LockLoginFailuresAsync(target.Username);
            await tx.SetStaffLockedAsync(target.Id, null);
            await tx.ClearLoginFailuresAsync(target.Username);
            await tx.AuditAsync(actor.Username, "staff.unlock", username, reason, target.LockedAt is { } at
                ? $"locked since {Describe(at)}, {failures.Failures} failed logins forgotten"
                : $"was not locked, {failures.Failures} failed logins forgotten");
            return target with { LockedAt = null };
        }, ct);
    }

    /// <summary>
    /// The active staff member behind a session or API token (unexpired, not revoked), read from the database on every
    /// request so revocation, deactivation and role changes hold on the next one, on every instance. The token's last use
    /// is written at most once per <see cref="FleetLimits.TokenLastUsedGranularity"/>, not on every request.
    /// </summary>
    public async Task<StaffTokenMatch?> AuthenticateAsync(string? token, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(token) || token.Length > FleetLimits.MaxBearerLength) return null;
        var match = await Read(tx => tx.FindStaffTokenAsync(Secrets.HashToken(token)), ct);
        if (match is null) return null;
        long granularity = (long)FleetLimits.TokenLastUsedGranularity.TotalMilliseconds;
        if (match.LastUsedAt is not { } last || time.GetUtcNow().ToUnixTimeMilliseconds() - last >= granularity)
            await Write(async tx => { await tx.TouchStaffTokenAsync(match.TokenId, granularity); return 0; }, ct);
        return match;
    }

    /// <summary>
    /// Like <see cref="AuthenticateAsync"/>, for a caller that needs full access: null also for a session that may only enroll
    /// TOTP (<see cref="StaffPolicy.MustEnrollTotp"/>).
    /// </summary>
    public async Task<Staff?> AuthenticateStaffAsync(string? token, CancellationToken ct) =>
        await AuthenticateAsync(token, ct) is { } match && !policy.MustEnrollTotp(match.Staff, match.Kind) ? match.Staff : null;

    public Task LogoutAsync(string token, CancellationToken ct) =>
        Write(async tx => { await tx.DeleteStaffTokenAsync(Secrets.HashToken(token)); return 0; }, ct);

    /// <summary>
    /// An API token for <paramref name="staff"/> without a role check: for `tabula fleet staff create --api-token` (whoever
    /// writes the database is its administrator) and tests. Over the API, <see cref="MintApiTokenAsync"/> (admins only).
    /// </summary>
    public async Task<string> CreateApiTokenAsync(Staff staff, string name, CancellationToken ct, string? expires = null) =>
        (await CreateApiTokenAsync(staff.Username, staff, name, expires, ct)).Token;

    /// <summary>
    /// Issue 17: only admins mint API tokens, for themselves or (<paramref name="forUsername"/>) another active staff member;
    /// the token expires (<see cref="TokenLifetime"/>, 90 days by default; never only when asked for). Shown once, stored as SHA-256.
    /// </summary>
    public async Task<(string Token, TokenInfo Info)> MintApiTokenAsync(Staff minter, string? forUsername, string name, string? expires,
        CancellationToken ct)
    {
        RequireAdmin(minter, "mint API tokens");
        var owner = forUsername is null ? minter
            : await Read(tx => tx.GetStaffAsync(forUsername), ct) ?? throw new FleetException(FleetError.NotFound, $"no staff member \"{forUsername}\"");
        return await CreateApiTokenAsync(minter.Username, owner, name, expires, ct);
    }

    private async Task<(string Token, TokenInfo Info)> CreateApiTokenAsync(string actor, Staff owner, string name, string? expires, CancellationToken ct)
    {
        if (name.Length is 0 or > FleetLimits.MaxTokenNameLength || name.Any(char.IsControl))
            throw new FleetException(FleetError.InvalidInput, $"token names are 1-{FleetLimits.MaxTokenNameLength} printable characters");
        long? expiresAt = TokenLifetime.Parse(expires, time.GetUtcNow(), FleetLimits.DefaultTokenLifetime);
        string token = Secrets.NewToken("tfa");
        var info = await Write(async tx =>
        {
            var current = await tx.GetStaffAsync(owner.Username);
            if (current is not { Active: true })
                throw new FleetException(FleetError.IllegalTransition, $"staff member \"{owner.Username}\" is deactivated or gone");
            long id = await tx.InsertStaffTokenAsync(Secrets.HashToken(token), current.Id, "api", name, expiresAt);
            var created = new TokenInfo($"api-{id}", TokenKind.Api, name, current.Username, current.Role, tx.Now, expiresAt, null);
            await tx.AuditAsync(actor, "token.create", created.Id, null, $"owner={current.Username}, name={name}, expires={Describe(expiresAt)}");
            return created;
        }, ct);
        return (token, info);
    }

    internal static string Describe(long? expiresAt) =>
        expiresAt is { } e ? DateTimeOffset.FromUnixTimeMilliseconds(e).ToString("u", System.Globalization.CultureInfo.InvariantCulture) : "never";

    private static void RequireAdmin(Staff actor, string what)
    {
        if (actor.Role != StaffRole.Admin)
            throw new FleetException(FleetError.Forbidden, $"only admins {what}; you are {actor.Role.Name()}");
    }

    /// <summary>
    /// Deactivates a staff member (admins; audited): their login, sessions and API tokens stop at once (the tokens are
    /// deleted in the same transaction). The last active admin cannot be deactivated.
    /// </summary>
    public Task<Staff> DeactivateAsync(Staff actor, string username, string? reason, CancellationToken ct)
    {
        RequireAdmin(actor, "deactivate staff");
        ValidateReason(reason);
        return Write(async tx =>
        {
            long admins = await tx.LockActiveAdminsAsync();   // first: a fixed lock order, so two admins acting at once cannot deadlock
            await RequireStillAdminAsync(tx, actor);
            var target = await tx.GetStaffAsync(username, forUpdate: true) ?? throw new FleetException(FleetError.NotFound, $"no staff member \"{username}\"");
            if (!target.Active) throw new FleetException(FleetError.IllegalTransition, $"\"{username}\" is already deactivated");
            if (target.Role == StaffRole.Admin && admins <= 1)
                throw new FleetException(FleetError.IllegalTransition, "this is the last active admin; make another admin first");
            await tx.SetStaffDeactivatedAsync(target.Id, tx.Now);
            int revoked = await tx.DeleteStaffTokensOfAsync(target.Id);
            await tx.AuditAsync(actor.Username, "staff.deactivate", username, reason, $"role={target.Role.Name()}, {revoked} tokens revoked");
            return target with { DeactivatedAt = tx.Now };
        }, ct);
    }

    /// <summary>Lets a deactivated staff member log in again (admins; audited). Their old tokens stay revoked.</summary>
    public Task<Staff> ActivateAsync(Staff actor, string username, string? reason, CancellationToken ct)
    {
        RequireAdmin(actor, "activate staff");
        ValidateReason(reason);
        return Write(async tx =>
        {
            await tx.LockActiveAdminsAsync();
            await RequireStillAdminAsync(tx, actor);
            var target = await tx.GetStaffAsync(username, forUpdate: true) ?? throw new FleetException(FleetError.NotFound, $"no staff member \"{username}\"");
            if (target.Active) throw new FleetException(FleetError.IllegalTransition, $"\"{username}\" is active");
            await tx.SetStaffDeactivatedAsync(target.Id, null);
            await tx.AuditAsync(actor.Username, "staff.activate", username, reason, $"role={target.Role.Name()}");
            return target with { DeactivatedAt = null };
        }, ct);
    }

    /// <summary>Changes a staff member's role (admins; audited "from -> to"); it holds from their next request. The last active admin keeps the role.</summary>
    public Task<Staff> SetRoleAsync(Staff actor, string username, StaffRole role, string? reason, CancellationToken ct)
    {
        RequireAdmin(actor, "change roles");
        ValidateReason(reason);
        return Write(async tx =>
        {
            long admins = await tx.LockActiveAdminsAsync();
            await RequireStillAdminAsync(tx, actor);
            var target = await tx.GetStaffAsync(username, forUpdate: true) ?? throw new FleetException(FleetError.NotFound, $"no staff member \"{username}\"");
            if (target.Role == role) return target;
            if (target.Role == StaffRole.Admin && target.Active && admins <= 1)
                throw new FleetException(FleetError.IllegalTransition, "this is the last active admin; make another admin first");
            await tx.SetStaffRoleAsync(target.Id, role);
            await tx.AuditAsync(actor.Username, "staff.role", username, reason, $"{target.Role.Name()} -> {role.Name()}");
            return target with { Role = role };
        }, ct);
    }

    // The actor was authenticated before this transaction: under the admins' locks, they must still be an active admin
    // (two admins demoting each other at once: the second finds itself demoted).
    private static async Task RequireStillAdminAsync(IStaffTx tx, Staff actor)
    {
        if (await tx.GetStaffAsync(actor.Username, forUpdate: true) is not { Active: true, Role: StaffRole.Admin })
            throw new FleetException(FleetError.Forbidden, "you are no longer an active admin");
    }

    private static void ValidateReason(string? reason)
    {
        if (reason is { Length: > FleetLimits.MaxReasonLength })
            throw new FleetException(FleetError.InvalidInput, $"reasons are at most {FleetLimits.MaxReasonLength} characters");
    }

    /// <summary>
    /// Starts TOTP enrollment. On an account that already has TOTP this needs a current code (<paramref name="currentCode"/>,
    /// a step not used before), so a stolen session alone cannot move the second factor to the thief's device; the new
    /// secret waits as pending and the current one stays in force until <see cref="ConfirmTotpAsync"/>.
    /// </summary>
    public async Task<(byte[] Secret, string Uri)> BeginTotpAsync(Staff staff, string? currentCode, CancellationToken ct)
    {
        byte[] secret = RandomNumberGenerator.GetBytes(20);
        await Write(async tx =>
        {
            var current = await tx.GetStaffAsync(staff.Username, forUpdate: true) ?? throw new FleetException(FleetError.NotFound, "no such staff member");
            if (current.TotpEnabled)
            {
                long? step = currentCode is null || current.TotpSecret is null ? null : Totp.Match(current.TotpSecret, currentCode, time.GetUtcNow());
                if (step is null || step <= current.TotpLastStep || !await tx.UseTotpStepAsync(current.Id, step.Value))
                    throw new FleetException(FleetError.Forbidden, currentCode is null
                        ? "TOTP is enabled: enrolling a new authenticator needs a current code (\"code\")"
                        : "wrong or reused TOTP code");
                await tx.SetTotpLastStepAsync(current.Id, step.Value);
                await tx.SetTotpPendingAsync(current.Id, secret);
                await tx.AuditAsync(staff.Username, "totp.reenroll", staff.Username, null, null);
            }
            else
            {
                await tx.SetTotpAsync(staff.Id, secret, enabled: false);
                await tx.AuditAsync(staff.Username, "totp.begin", staff.Username, null, null);
            }
            return 0;
        }, ct);
        return (secret, Totp.Uri("Tabula fleet", staff.Username, secret));
    }

    /// <summary>Confirms the secret from <see cref="BeginTotpAsync"/> with a code from it: enables TOTP, or replaces the current secret.</summary>
    public Task ConfirmTotpAsync(Staff staff, string code, CancellationToken ct) => Write(async tx =>
    {
        var current = await tx.GetStaffAsync(staff.Username, forUpdate: true);
        byte[]? pending = current is { TotpEnabled: true } ? await tx.GetTotpPendingAsync(current.Id) : current?.TotpSecret;
        if (current is null || pending is null)
            throw new FleetException(FleetError.IllegalTransition, "start TOTP enrollment first");
        long step = Totp.Match(pending, code, time.GetUtcNow())
                    ?? throw new FleetException(FleetError.InvalidInput, "wrong TOTP code");
        await tx.UseTotpStepAsync(current.Id, step);   // a login cannot use the confirming code again
        bool replacing = current.TotpEnabled;
        await tx.SetTotpAsync(staff.Id, pending, enabled: true);
        await tx.SetTotpLastStepAsync(staff.Id, Math.Max(step, current.TotpLastStep));
        if (replacing) await tx.SetTotpPendingAsync(staff.Id, null);
        await tx.AuditAsync(staff.Username, replacing ? "totp.replace" : "totp.enable", staff.Username, null, null);
        return 0;
    }, ct);

    public Task<IReadOnlyList<Staff>> ListStaffAsync(CancellationToken ct) => Read(tx => tx.ListStaffAsync(), ct);

    /// <summary>A page of the audit trail (limit 1..1000; filters at most <see cref="MaxAuditFilterLength"/> characters).</summary>
    public Task<IReadOnlyList<AuditEntry>> SearchAuditAsync(AuditQuery query, CancellationToken ct)
    {
        if (new[] { query.Actor, query.Action, query.Target }.Any(f => f is { Length: > MaxAuditFilterLength }))
            throw new FleetException(FleetError.InvalidInput, $"audit filters are at most {MaxAuditFilterLength} characters");
        return Read(tx => tx.SearchAuditAsync(query with { Limit = Math.Clamp(query.Limit, 1, 1000) }), ct);
    }

    public const int MaxAuditFilterLength = 200;

    // Transactions through this service's slice of the store only.
    private Task<T> Write<T>(Func<IStaffTx, Task<T>> work, CancellationToken ct) => store.WriteAsync(tx => work(tx), ct);
    private Task<T> Read<T>(Func<IStaffTx, Task<T>> work, CancellationToken ct) => store.ReadAsync(tx => work(tx), ct);
}

/// <summary>A password login's session; <see cref="TotpEnrollmentOnly"/>: it may only enroll TOTP (<see cref="StaffPolicy.MustEnrollTotp"/>).</summary>
public sealed record LoginResult(string Token, Staff Staff, DateTimeOffset Expires, bool TotpEnrollmentOnly);

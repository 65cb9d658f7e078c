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
public sealed class StaffService(IStore store, FleetMetrics metrics, TimeProvider time, ILogger<StaffService> logger)
{
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

    public async Task<(string Token, Staff Staff, DateTimeOffset Expires)> LoginAsync(string username, string password, string? totp, CancellationToken ct)
    {
        var staff = await Read(tx => tx.GetStaffAsync(username), ct);
        // Same work whether or not the user exists: no username enumeration by timing.
        bool passwordOk = PasswordHasher.Verify(password, staff?.PasswordHash ?? PasswordHasher.Dummy) && staff is { Active: true };
        if (!passwordOk || staff is null)
        {
            metrics.LoginFailures.Add(1);
            throw new FleetException(FleetError.Unauthenticated, "wrong username or password");
        }
        var now = time.GetUtcNow();
        var expires = now + FleetLimits.SessionLifetime;
        string token = Secrets.NewToken("tfs");
        await Write(async tx =>
        {
            var current = await tx.GetStaffAsync(username) is { Active: true } active ? active
                : throw new FleetException(FleetError.Unauthenticated, "wrong username or password");
            if (current.TotpEnabled)
            {
                long? step = totp is null || current.TotpSecret is null ? null : Totp.Match(current.TotpSecret, totp, now);
                if (step is null || step <= current.TotpLastStep)
                {
                    metrics.LoginFailures.Add(1);
                    throw new FleetException(FleetError.Unauthenticated, totp is null ? "a TOTP code is required" : "wrong or reused TOTP code");
                }
                await tx.SetTotpLastStepAsync(current.Id, step.Value);
            }
            await tx.InsertStaffTokenAsync(Secrets.HashToken(token), current.Id, "session", "dashboard", expires.ToUnixTimeMilliseconds());
            await tx.AuditAsync(current.Username, "staff.login", current.Username, null, null);
            return 0;
        }, ct);
        Log.StaffLoggedIn(logger, staff.Username);
        return (token, staff, expires);
    }

    /// <summary>
    /// The active staff member behind a session or API token (unexpired, not revoked), read from the database on every
    /// request so revocation, deactivation and role changes hold on the next one, on every instance. The token's last use
    /// is written at most once per <see cref="FleetLimits.TokenLastUsedGranularity"/>, not on every request.
    /// </summary>
    public async Task<Staff?> AuthenticateStaffAsync(string? token, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(token) || token.Length > FleetLimits.MaxBearerLength) return null;
        var match = await Read(tx => tx.FindStaffTokenAsync(Secrets.HashToken(token)), ct);
        if (match is null) return null;
        long granularity = (long)FleetLimits.TokenLastUsedGranularity.TotalMilliseconds;
        if (match.LastUsedAt is not { } last || time.GetUtcNow().ToUnixTimeMilliseconds() - last >= granularity)
            await Write(async tx => { await tx.TouchStaffTokenAsync(match.TokenId, granularity); return 0; }, ct);
        return match.Staff;
    }

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
            var current = await tx.GetStaffAsync(staff.Username) ?? throw new FleetException(FleetError.NotFound, "no such staff member");
            if (current.TotpEnabled)
            {
                long? step = currentCode is null || current.TotpSecret is null ? null : Totp.Match(current.TotpSecret, currentCode, time.GetUtcNow());
                if (step is null || step <= current.TotpLastStep)
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
        var current = await tx.GetStaffAsync(staff.Username);
        byte[]? pending = current is { TotpEnabled: true } ? await tx.GetTotpPendingAsync(current.Id) : current?.TotpSecret;
        if (current is null || pending is null)
            throw new FleetException(FleetError.IllegalTransition, "start TOTP enrollment first");
        long step = Totp.Match(pending, code, time.GetUtcNow())
                    ?? throw new FleetException(FleetError.InvalidInput, "wrong TOTP code");
        bool replacing = current.TotpEnabled;
        await tx.SetTotpAsync(staff.Id, pending, enabled: true);
        await tx.SetTotpLastStepAsync(staff.Id, Math.Max(step, current.TotpLastStep));
        if (replacing) await tx.SetTotpPendingAsync(staff.Id, null);
        await tx.AuditAsync(staff.Username, replacing ? "totp.replace" : "totp.enable", staff.Username, null, null);
        return 0;
    }, ct);

    public Task<IReadOnlyList<Staff>> ListStaffAsync(CancellationToken ct) => Read(tx => tx.ListStaffAsync(), ct);

    public Task<IReadOnlyList<AuditEntry>> AuditAsync(int limit, CancellationToken ct) =>
        Read(tx => tx.ListAuditAsync(Math.Clamp(limit, 1, 1000)), ct);

    // Transactions through this service's slice of the store only.
    private Task<T> Write<T>(Func<IStaffTx, Task<T>> work, CancellationToken ct) => store.WriteAsync(tx => work(tx), ct);
    private Task<T> Read<T>(Func<IStaffTx, Task<T>> work, CancellationToken ct) => store.ReadAsync(tx => work(tx), ct);
}

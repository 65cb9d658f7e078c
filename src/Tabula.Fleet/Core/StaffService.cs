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
        bool passwordOk = PasswordHasher.Verify(password, staff?.PasswordHash ?? PasswordHasher.Dummy) && staff is not null;
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
            var current = await tx.GetStaffAsync(username) ?? throw new FleetException(FleetError.Unauthenticated, "wrong username or password");
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

    public async Task<Staff?> AuthenticateStaffAsync(string? token, CancellationToken ct) =>
        string.IsNullOrEmpty(token) ? null : await Read(tx => tx.GetStaffByTokenAsync(Secrets.HashToken(token)), ct);

    public Task LogoutAsync(string token, CancellationToken ct) =>
        Write(async tx => { await tx.DeleteStaffTokenAsync(Secrets.HashToken(token)); return 0; }, ct);

    /// <summary>A long-lived bearer token for the CLI; only its hash is stored.</summary>
    public async Task<string> CreateApiTokenAsync(Staff staff, string name, CancellationToken ct)
    {
        if (name.Length is 0 or > FleetLimits.MaxTokenNameLength)
            throw new FleetException(FleetError.InvalidInput, $"token names are 1-{FleetLimits.MaxTokenNameLength} characters");
        string token = Secrets.NewToken("tfa");
        await Write(async tx =>
        {
            await tx.InsertStaffTokenAsync(Secrets.HashToken(token), staff.Id, "api", name, null);
            await tx.AuditAsync(staff.Username, "token.create", staff.Username, null, name);
            return 0;
        }, ct);
        return token;
    }

    public async Task<(byte[] Secret, string Uri)> BeginTotpAsync(Staff staff, CancellationToken ct)
    {
        byte[] secret = RandomNumberGenerator.GetBytes(20);
        await Write(async tx =>
        {
            var current = await tx.GetStaffAsync(staff.Username);
            if (current is { TotpEnabled: true })
                throw new FleetException(FleetError.IllegalTransition, "TOTP is already enabled");
            await tx.SetTotpAsync(staff.Id, secret, enabled: false);
            await tx.AuditAsync(staff.Username, "totp.begin", staff.Username, null, null);
            return 0;
        }, ct);
        return (secret, Totp.Uri("Tabula fleet", staff.Username, secret));
    }

    public Task ConfirmTotpAsync(Staff staff, string code, CancellationToken ct) => Write(async tx =>
    {
        var current = await tx.GetStaffAsync(staff.Username);
        if (current?.TotpSecret is null || current.TotpEnabled)
            throw new FleetException(FleetError.IllegalTransition, "start TOTP enrollment first");
        long step = Totp.Match(current.TotpSecret, code, time.GetUtcNow())
                    ?? throw new FleetException(FleetError.InvalidInput, "wrong TOTP code");
        await tx.SetTotpAsync(staff.Id, current.TotpSecret, enabled: true);
        await tx.SetTotpLastStepAsync(staff.Id, step);
        await tx.AuditAsync(staff.Username, "totp.enable", staff.Username, null, null);
        return 0;
    }, ct);

    public Task<IReadOnlyList<Staff>> ListStaffAsync(CancellationToken ct) => Read(tx => tx.ListStaffAsync(), ct);

    public Task<IReadOnlyList<AuditEntry>> AuditAsync(int limit, CancellationToken ct) =>
        Read(tx => tx.ListAuditAsync(Math.Clamp(limit, 1, 1000)), ct);

    // Transactions through this service's slice of the store only.
    private Task<T> Write<T>(Func<IStaffTx, Task<T>> work, CancellationToken ct) => store.WriteAsync(tx => work(tx), ct);
    private Task<T> Read<T>(Func<IStaffTx, Task<T>> work, CancellationToken ct) => store.ReadAsync(tx => work(tx), ct);
}

using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Tabula.Fleet.Protocol;
using Tabula.Fleet.Security;
using Tabula.Fleet.Storage;
using Tabula.Packaging.Crypto;

namespace Tabula.Fleet.Core;

/// <summary>
/// The fleet controller without a transport: every operation validates its input, runs in one store
/// transaction, audits staff actions in that same transaction, and tells other instances what changed.
/// Api/ maps HTTP onto it; the CLI calls it directly for bootstrap (first admin).
/// </summary>
public sealed class FleetCore(IStore store, PeerHub hub, MachineEvents machineEvents, AddressPool pool,
    FleetMetrics metrics, TimeProvider time, ILogger<FleetCore> logger)
{
    public IStore Store => store;
    public PeerHub Hub => hub;
    public MachineEvents MachineEvents => machineEvents;
    public AddressPool Pool => pool;
    public FleetMetrics Metrics => metrics;

    /// <summary>Called for every notification from any instance (PostgreSQL NOTIFY).</summary>
    public Task OnNotificationAsync(string payload)
    {
        if (payload is "peers" or "listening") hub.Poke();
        if (payload is "machines" or "listening") machineEvents.Changed();
        return Task.CompletedTask;
    }

    // ------------------------------------------------------------------ staff

    public async Task<Staff> CreateStaffAsync(string actor, string username, string password, StaffRole role, CancellationToken ct)
    {
        ValidateUsername(username);
        if (password.Length < FleetLimits.MinPasswordLength || password.Length > FleetLimits.MaxPasswordLength)
            throw new FleetException(FleetError.InvalidInput, $"passwords are {FleetLimits.MinPasswordLength} to {FleetLimits.MaxPasswordLength} characters");
        string hash = PasswordHasher.Hash(password);
        return await store.WriteAsync(async tx =>
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
        var staff = await store.ReadAsync(tx => tx.GetStaffAsync(username), ct);
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
        await store.WriteAsync(async tx =>
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
        string.IsNullOrEmpty(token) ? null : await store.ReadAsync(tx => tx.GetStaffByTokenAsync(Secrets.HashToken(token)), ct);

    public Task LogoutAsync(string token, CancellationToken ct) =>
        store.WriteAsync(async tx => { await tx.DeleteStaffTokenAsync(Secrets.HashToken(token)); return 0; }, ct);

    /// <summary>A long-lived bearer token for the CLI; only its hash is stored.</summary>
    public async Task<string> CreateApiTokenAsync(Staff staff, string name, CancellationToken ct)
    {
        if (name.Length is 0 or > FleetLimits.MaxTokenNameLength)
            throw new FleetException(FleetError.InvalidInput, $"token names are 1-{FleetLimits.MaxTokenNameLength} characters");
        string token = Secrets.NewToken("tfa");
        await store.WriteAsync(async tx =>
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
        await store.WriteAsync(async tx =>
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

    public Task ConfirmTotpAsync(Staff staff, string code, CancellationToken ct) => store.WriteAsync(async tx =>
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

    public Task<IReadOnlyList<Staff>> ListStaffAsync(CancellationToken ct) => store.ReadAsync(tx => tx.ListStaffAsync(), ct);

    public Task<IReadOnlyList<AuditEntry>> AuditAsync(int limit, CancellationToken ct) =>
        store.ReadAsync(tx => tx.ListAuditAsync(Math.Clamp(limit, 1, 1000)), ct);

    // ------------------------------------------------------------------ enrollment

    public async Task<string> CreateEnrollmentTokenAsync(string actor, string name, CancellationToken ct)
    {
        if (name.Length is 0 or > FleetLimits.MaxTokenNameLength)
            throw new FleetException(FleetError.InvalidInput, $"token names are 1-{FleetLimits.MaxTokenNameLength} characters");
        string token = Secrets.NewToken("tfe");
        await store.WriteAsync(async tx =>
        {
            await tx.InsertEnrollmentTokenAsync(Secrets.HashToken(token), name, actor);
            await tx.AuditAsync(actor, "enrollment-token.create", name, null, null);
            return 0;
        }, ct);
        return token;
    }

    public Task AllowPackageAsync(string actor, string digest, string? reason, CancellationToken ct)
    {
        if (!Enrollment.IsDigest(digest))
            throw new FleetException(FleetError.InvalidInput, "a package digest is 64 lowercase hex characters (SHA-256)");
        return store.WriteAsync(async tx =>
        {
            await tx.AllowPackageAsync(digest, actor);
            await tx.AuditAsync(actor, "package.allow", digest, reason, null);
            return 0;
        }, ct);
    }

    public Task<IReadOnlyList<string>> AllowedPackagesAsync(CancellationToken ct) => store.ReadAsync(tx => tx.AllowedPackagesAsync(), ct);

    private async Task RequireEnrollmentTokenAsync(IStoreTx tx, string? token)
    {
        if (string.IsNullOrEmpty(token) || !await tx.EnrollmentTokenExistsAsync(Secrets.HashToken(token)))
            throw new FleetException(FleetError.Unauthenticated, "a valid enrollment token is required");
    }

    public async Task<(byte[] Nonce, DateTimeOffset Expires)> NewEnrollmentNonceAsync(string? enrollmentToken, CancellationToken ct)
    {
        byte[] nonce = RandomNumberGenerator.GetBytes(32);
        var expires = time.GetUtcNow() + FleetLimits.EnrollmentNonceLifetime;
        await store.WriteAsync(async tx =>
        {
            await RequireEnrollmentTokenAsync(tx, enrollmentToken);
            await tx.InsertNonceAsync(nonce, expires.ToUnixTimeMilliseconds());
            return 0;
        }, ct);
        return (nonce, expires);
    }

    public sealed record EnrollRequest(byte[] IdentityKey, byte[] WireGuardKey, string PackageDigest, byte[] Nonce, byte[] Signature);

    /// <summary>
    /// Enrolls a booted machine. Order matters: the token, then the nonce (consumed even if the signature
    /// then fails, so a forged attempt also burns it), then the signature. Returns a fresh relay token;
    /// the previous boot's token stops working.
    /// </summary>
    public async Task<(Machine Machine, string RelayToken)> EnrollAsync(string? enrollmentToken, EnrollRequest request, CancellationToken ct)
    {
        if (request.IdentityKey.Length != Ed25519.PublicKeySize)
            throw new FleetException(FleetError.InvalidInput, "identity_key must be a 32-byte Ed25519 public key");
        if (!Enrollment.IsDigest(request.PackageDigest))
            throw new FleetException(FleetError.InvalidInput, "package_digest must be 64 lowercase hex characters (SHA-256)");
        string relayToken = Secrets.NewToken("tfr");
        string id = Enrollment.MachineId(request.IdentityKey);
        bool consumed = await store.WriteAsync(async tx =>
        {
            await RequireEnrollmentTokenAsync(tx, enrollmentToken);
            return await tx.ConsumeNonceAsync(request.Nonce);
        }, ct);
        if (!consumed) throw new FleetException(FleetError.ReplayedEnrollment, "the enrollment nonce is unknown, expired or already used");
        if (!Ed25519.Verify(request.IdentityKey, Enrollment.Message(request.Nonce, request.WireGuardKey, request.PackageDigest), request.Signature))
            throw new FleetException(FleetError.ForgedEnrollment, "the enrollment signature does not verify with identity_key");

        var machine = await store.WriteAsync(async tx =>
        {
            bool allowed = await tx.IsPackageAllowedAsync(request.PackageDigest);
            var existing = await tx.GetMachineAsync(id, forUpdate: true);
            Machine result;
            if (existing is null)
            {
                result = new Machine(id, MachineState.Awaiting, null, request.IdentityKey, request.WireGuardKey, request.PackageDigest,
                    null, 0, tx.Now, tx.Now);
                await tx.InsertMachineAsync(result, Secrets.HashToken(relayToken));
                await tx.AuditAsync("machine:" + id, "machine.enroll", id, null, "new, awaiting");
            }
            else
            {
                var (state, previous) = MachineLifecycle.OnEnrollment(existing, allowed);
                result = existing with
                {
                    State = state, PreviousState = previous, WireGuardKey = request.WireGuardKey, PackageDigest = request.PackageDigest,
                    EnrolledAt = tx.Now, UpdatedAt = tx.Now,
                };
                await tx.UpdateMachineAsync(result);
                await tx.SetRelayTokenAsync(id, Secrets.HashToken(relayToken));
                await tx.AuditAsync("machine:" + id, "machine.enroll", id, null,
                    $"{existing.State.Name()} -> {state.Name()}, package {(allowed ? "allowed" : "not allowed")}");
            }
            await tx.NotifyAsync("machines");
            return result;
        }, ct);
        metrics.Enrollments.Add(1);
        machineEvents.Changed();
        Log.MachineEnrolled(logger, machine.Id, machine.State.Name());
        return (machine, relayToken);
    }

    // ------------------------------------------------------------------ machines

    public Task<IReadOnlyList<Machine>> ListMachinesAsync(MachineState? state, CancellationToken ct) =>
        store.ReadAsync(tx => tx.ListMachinesAsync(state), ct);

    public async Task<Machine> GetMachineAsync(string id, CancellationToken ct) =>
        await store.ReadAsync(tx => tx.GetMachineAsync(id, forUpdate: false), ct)
        ?? throw new FleetException(FleetError.NotFound, $"no machine \"{Truncate(id)}\"");

    public async Task<Machine> TransitionAsync(Staff staff, string machineId, MachineLifecycle.Action action, string? reason,
        RelayPlacement? placement, CancellationToken ct)
    {
        if (reason is { Length: > FleetLimits.MaxReasonLength })
            throw new FleetException(FleetError.InvalidInput, $"reasons are at most {FleetLimits.MaxReasonLength} characters");
        if (action == MachineLifecycle.Action.Provision)
            ValidatePlacement(placement ?? throw new FleetException(FleetError.InvalidInput, "provision needs a placement (hostname, location, …)"));
        var machine = await store.WriteAsync(async tx =>
        {
            var current = await tx.GetMachineAsync(machineId, forUpdate: true)
                          ?? throw new FleetException(FleetError.NotFound, $"no machine \"{Truncate(machineId)}\"");
            var to = MachineLifecycle.Apply(current, action);
            if (placement is not null && await tx.HostnameTakenAsync(placement.Hostname, machineId))
                throw new FleetException(FleetError.Duplicate, $"hostname \"{placement.Hostname}\" is taken");
            var updated = current with { State = to, PreviousState = null, Placement = placement ?? current.Placement, UpdatedAt = tx.Now };
            await tx.UpdateMachineAsync(updated);
            await tx.AuditAsync(staff.Username, "machine." + action.ToString().ToLowerInvariant(), machineId, reason,
                $"{current.State.Name()} -> {to.Name()}" + (placement is null ? "" : $", hostname {placement.Hostname}"));
            await tx.NotifyAsync("machines");
            return updated;
        }, ct);
        machineEvents.Changed();
        Log.MachineTransition(logger, machineId, action.ToString(), machine.State.Name(), staff.Username);
        return machine;
    }

    private static void ValidatePlacement(RelayPlacement p)
    {
        static bool Label(string s) => s.Length is > 0 and <= FleetLimits.MaxHostnameLength
                                       && s.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-') && s[0] != '-' && s[^1] != '-';
        if (!Label(p.Hostname)) throw new FleetException(FleetError.InvalidInput, "hostname is a DNS label: 1-63 characters of [a-z0-9-]");
        if (p.CountryCode.Length != 2 || !p.CountryCode.All(char.IsAsciiLetterLower))
            throw new FleetException(FleetError.InvalidInput, "country_code is two lowercase letters (ISO 3166-1)");
        if (p.CityCode.Length != 3 || !p.CityCode.All(char.IsAsciiLetterLower))
            throw new FleetException(FleetError.InvalidInput, "city_code is three lowercase letters");
        foreach (var (name, value) in new[] { ("country", p.Country), ("city", p.City), ("provider", p.Provider) })
            if (value.Length is 0 or > 100) throw new FleetException(FleetError.InvalidInput, $"{name} is 1-100 characters");
        if (!System.Net.IPAddress.TryParse(p.Ipv4AddrIn, out var v4) || v4.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            throw new FleetException(FleetError.InvalidInput, "ipv4_addr_in is an IPv4 address");
        if (p.Ipv6AddrIn is not null && (!System.Net.IPAddress.TryParse(p.Ipv6AddrIn, out var v6) || v6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6))
            throw new FleetException(FleetError.InvalidInput, "ipv6_addr_in is an IPv6 address");
        if (p.Port is < 1 or > 65535) throw new FleetException(FleetError.InvalidInput, "port is 1-65535");
        if (p.Weight is < 0 or > 10000) throw new FleetException(FleetError.InvalidInput, "weight is 0-10000");
    }

    private static string Truncate(string s) => s.Length > 64 ? s[..64] + "…" : s;

    public async Task<Machine?> AuthenticateRelayAsync(string? token, CancellationToken ct) =>
        string.IsNullOrEmpty(token) ? null : await store.ReadAsync(tx => tx.GetMachineByRelayTokenAsync(Secrets.HashToken(token)), ct);

    public Task ReportAppliedAsync(Machine relay, long revision, CancellationToken ct)
    {
        if (revision < 0) throw new FleetException(FleetError.InvalidInput, "revision must not be negative");
        return store.WriteAsync(async tx =>
        {
            long head = await tx.HeadRevisionAsync();
            if (revision > head) throw new FleetException(FleetError.InvalidInput, "revision is ahead of the controller");
            await tx.SetAppliedRevisionAsync(relay.Id, revision);
            return 0;
        }, ct);
    }

    public Task<(long Head, long Deployed, long Applied)> AppliedAsync(long revision, CancellationToken ct) =>
        store.ReadAsync(async tx =>
        {
            var (deployed, applied) = await tx.CountAppliedAsync(revision);
            return (await tx.HeadRevisionAsync(), deployed, applied);
        }, ct);

    // ------------------------------------------------------------------ customers

    /// <summary>Creates an account. <paramref name="actor"/> is a staff member, or null for self-service (not audited: customer activity).</summary>
    public async Task<Account> CreateAccountAsync(string? actor, int? deviceLimit, CancellationToken ct)
    {
        int limit = deviceLimit ?? FleetLimits.DefaultDeviceLimit;
        if (limit is < 1 or > 100) throw new FleetException(FleetError.InvalidInput, "device_limit is 1-100");
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                return await store.WriteAsync(async tx =>
                {
                    var account = await tx.InsertAccountAsync(Secrets.NewAccountNumber(), limit);
                    if (actor is not null) await tx.AuditAsync(actor, "account.create", "account", null, null);
                    return account;
                }, ct);
            }
            catch (FleetException e) when (e.Error == FleetError.Duplicate && attempt < 3) { }   // number collision: draw again
        }
    }

    public async Task<Account> GetAccountAsync(string? number, CancellationToken ct) =>
        (number is { Length: 16 } && number.All(char.IsAsciiDigit) ? await store.ReadAsync(tx => tx.GetAccountAsync(number), ct) : null)
        ?? throw new FleetException(FleetError.Unauthenticated, "unknown account number");

    public async Task<IReadOnlyList<Device>> ListDevicesAsync(string? accountNumber, CancellationToken ct)
    {
        var account = await GetAccountAsync(accountNumber, ct);
        return await store.ReadAsync(tx => tx.ListDevicesAsync(account.Id), ct);
    }

    /// <summary>Adds a device; the key is live on a relay once that relay has applied the returned revision.</summary>
    public async Task<Device> AddDeviceAsync(string? accountNumber, byte[] publicKey, CancellationToken ct)
    {
        var device = await store.WriteAsync(async tx =>
        {
            var state = await tx.PeerStateAsync(forUpdate: true);
            var account = await FindAccount(tx, accountNumber);
            if (await tx.CountDevicesAsync(account.Id) >= account.DeviceLimit)
                throw new FleetException(FleetError.DeviceLimit, $"this account already has {account.DeviceLimit} devices; remove one first");
            if (await tx.DeviceKeyExistsAsync(publicKey))
                throw new FleetException(FleetError.Duplicate, "this public key is already in use");
            var (ipv4, ipv6) = pool.Allocate(state.NextAddress);
            long revision = state.Revision + 1;
            byte[] hash = (byte[])state.SetHash.Clone();
            PeerSetHash.Toggle(hash, publicKey, ipv4, ipv6);
            var added = await tx.InsertDeviceAsync(account.Id, publicKey, ipv4, ipv6, revision);
            await tx.InsertChangeAsync(new PeerChange(revision, PeerChangeKind.Add, publicKey, ipv4, ipv6, hash));
            await tx.SavePeerStateAsync(new PeerState(revision, hash, state.NextAddress + 1));
            await tx.NotifyAsync("peers");
            return added;
        }, ct);
        hub.Poke();
        return device;
    }

    /// <summary>Removes a device; returns the revision at which relays drop the key.</summary>
    public async Task<long> RemoveDeviceAsync(string? accountNumber, long deviceId, CancellationToken ct)
    {
        long revision = await store.WriteAsync(async tx =>
        {
            var state = await tx.PeerStateAsync(forUpdate: true);
            var account = await FindAccount(tx, accountNumber);
            var device = await tx.GetDeviceAsync(account.Id, deviceId) ?? throw new FleetException(FleetError.NotFound, "no such device");
            return (await RemoveDeviceInTx(tx, state, device)).Revision;
        }, ct);
        hub.Poke();
        return revision;
    }

    /// <summary>Removes one device inside the caller's transaction (which holds the peer state lock); returns the new state.</summary>
    private static async Task<PeerState> RemoveDeviceInTx(IStoreTx tx, PeerState state, Device device)
    {
        long revision = state.Revision + 1;
        byte[] hash = (byte[])state.SetHash.Clone();
        PeerSetHash.Toggle(hash, device.PublicKey, device.Ipv4, device.Ipv6);
        await tx.DeleteDeviceAsync(device.Id);
        await tx.InsertChangeAsync(new PeerChange(revision, PeerChangeKind.Remove, device.PublicKey, device.Ipv4, device.Ipv6, hash));
        var next = state with { Revision = revision, SetHash = hash };
        await tx.SavePeerStateAsync(next);
        await tx.NotifyAsync("peers");
        return next;
    }

    /// <summary>Staff delete an account with all its devices (one revision per device, one transaction).</summary>
    public async Task<long> DeleteAccountAsync(Staff staff, string accountNumber, string? reason, CancellationToken ct)
    {
        long revision = await store.WriteAsync(async tx =>
        {
            var state = await tx.PeerStateAsync(forUpdate: true);
            var account = await FindAccount(tx, accountNumber);
            foreach (var device in await tx.ListDevicesAsync(account.Id))
                state = await RemoveDeviceInTx(tx, state, device);
            await tx.DeleteAccountAsync(account.Id);
            await tx.AuditAsync(staff.Username, "account.delete", "account", reason, null);
            return state.Revision;
        }, ct);
        hub.Poke();
        return revision;
    }

    private static async Task<Account> FindAccount(IStoreTx tx, string? number) =>
        (number is { Length: 16 } && number.All(char.IsAsciiDigit) ? await tx.GetAccountAsync(number) : null)
        ?? throw new FleetException(FleetError.Unauthenticated, "unknown account number");
}

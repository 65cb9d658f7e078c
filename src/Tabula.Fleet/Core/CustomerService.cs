using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Tabula.Fleet.Protocol;
using Tabula.Fleet.Security;
using Tabula.Fleet.Storage;
using Tabula.Packaging.Crypto;

namespace Tabula.Fleet.Core;

/// <summary>
/// Customers: accounts and their devices. A device change is a peer change: it takes the next revision, updates the
/// set hash and the change log in the same transaction, and wakes the peer stream (docs/fleet.md "Peer stream").
/// </summary>
public sealed class CustomerService(IStore store, PeerHub hub, AddressPool pool, CustomerPolicy policy)
{
    /// <summary>Device and account totals and the head revision (metrics), from one consistent read.</summary>
    public Task<(long Devices, long Accounts, long Head)> CountsAsync(CancellationToken ct) =>
        Read(async tx => (await tx.CountDevicesAsync(null), await tx.CountAccountsAsync(), await tx.HeadRevisionAsync()), ct);

    /// <summary>
    /// Creates an account. <paramref name="actor"/> is a staff member, or null for self-service (not audited: customer activity).
    /// The number is returned this once: the store keeps only its HMAC (issue 17, "At rest").
    /// </summary>
    public async Task<NewAccount> CreateAccountAsync(string? actor, int? deviceLimit, CancellationToken ct)
    {
        int limit = deviceLimit ?? FleetLimits.DefaultDeviceLimit;
        if (limit is < 1 or > 100) throw new FleetException(FleetError.InvalidInput, "device_limit is 1-100");
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                string number = Secrets.NewAccountNumber();
                return await Write(async tx =>
                {
                    var account = await tx.InsertAccountAsync(number, limit);
                    if (actor is not null) await tx.AuditAsync(actor, "account.create", "account " + account.PublicId, null, null);
                    return new NewAccount(account, number);
                }, ct);
            }
            catch (FleetException e) when (e.Error == FleetError.Duplicate && attempt < 3) { }   // number collision: draw again
        }
    }

    /// <summary>
    /// Self-service account creation (<c>POST /app/v1/accounts</c>), as the operator's <see cref="AccountCreation"/> allows:
    /// a voucher is used once in the same transaction as the account insert; a proof of work consumes its challenge.
    /// Not audited (customer activity); a voucher's use count shows it was used.
    /// </summary>
    public async Task<NewAccount> CreateSelfServiceAccountAsync(string? voucher, byte[]? challenge, byte[]? nonce, CancellationToken ct)
    {
        bool hasVoucher = !string.IsNullOrEmpty(voucher);
        bool hasWork = challenge is not null && nonce is not null;
        if (policy.Creation == AccountCreation.Open && !hasVoucher)
            return await CreateAccountAsync(null, null, ct);
        if (!hasVoucher && !(hasWork && policy.Creation == AccountCreation.ProofOfWork))
            throw new FleetException(FleetError.AccountCreationRefused, policy.Creation == AccountCreation.ProofOfWork
                ? "account creation needs a voucher code or a solved challenge (POST /app/v1/accounts/challenge)"
                : "account creation needs a voucher code from staff");
        if (voucher is { Length: > FleetLimits.MaxVoucherLength })
            throw new FleetException(FleetError.AccountCreationRefused, "unknown, used, revoked or expired voucher");
        if (!hasVoucher && !ProofOfWork.Verify(challenge!, nonce!, policy.ProofOfWorkBits))
            throw new FleetException(FleetError.AccountCreationRefused, "the proof of work does not solve the challenge");
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                string number = Secrets.NewAccountNumber();
                return await Write(async tx =>
                {
                    if (hasVoucher ? !await tx.RedeemVoucherAsync(Secrets.HashToken(voucher!)) : !await tx.ConsumeAccountChallengeAsync(challenge!))
                        throw new FleetException(FleetError.AccountCreationRefused, hasVoucher
                            ? "unknown, used, revoked or expired voucher" : "unknown, expired or used challenge");
                    return new NewAccount(await tx.InsertAccountAsync(number, FleetLimits.DefaultDeviceLimit), number);
                }, ct);
            }
            catch (FleetException e) when (e.Error == FleetError.Duplicate && attempt < 3) { }   // number collision: draw again
        }
    }

    /// <summary>A new proof-of-work challenge (only when the operator chose <see cref="AccountCreation.ProofOfWork"/>).</summary>
    public async Task<(byte[] Challenge, int Bits, DateTimeOffset Expires)> NewAccountChallengeAsync(CancellationToken ct)
    {
        if (policy.Creation != AccountCreation.ProofOfWork)
            throw new FleetException(FleetError.AccountCreationRefused, "this controller does not take proofs of work; ask staff for a voucher code");
        byte[] challenge = RandomNumberGenerator.GetBytes(ProofOfWork.ChallengeBytes);
        long expires = await Write(async tx =>
        {
            long at = tx.Now + (long)FleetLimits.AccountChallengeLifetime.TotalMilliseconds;
            await tx.InsertAccountChallengeAsync(challenge, at);
            return at;
        }, ct);
        return (challenge, policy.ProofOfWorkBits, DateTimeOffset.FromUnixTimeMilliseconds(expires));
    }

    public async Task<Account> GetAccountAsync(string? number, CancellationToken ct) =>
        (IsAccountNumber(number) ? await Read(tx => tx.GetAccountAsync(number!), ct) : null)
        ?? throw new FleetException(FleetError.Unauthenticated, "unknown account number");

    public async Task<IReadOnlyList<Device>> ListDevicesAsync(string? accountNumber, CancellationToken ct) =>
        await ListDevicesAsync(await GetAccountAsync(accountNumber, ct), ct);

    public Task<IReadOnlyList<Device>> ListDevicesAsync(Account account, CancellationToken ct) => Read(tx => tx.ListDevicesAsync(account.Id), ct);

    /// <summary>
    /// The account staff name by its number (a customer read it to them) or by its account id (<see cref="Account.PublicId"/>,
    /// what staff see otherwise); <see cref="FleetError.NotFound"/> when there is none.
    /// </summary>
    public async Task<Account> FindForStaffAsync(string numberOrId, CancellationToken ct)
    {
        Account? account = null;
        if (IsAccountNumber(numberOrId)) account = await Read(tx => tx.GetAccountAsync(numberOrId), ct);
        if (account is null && numberOrId.Length == SecretsKey.AccountIdLength && numberOrId.All(char.IsAsciiHexDigitLower))
            account = await Read(tx => tx.GetAccountByIdAsync(numberOrId), ct);
        return account ?? throw new FleetException(FleetError.NotFound, "no such account");
    }

    private static bool IsAccountNumber(string? number) => number is { Length: 16 } && number.All(char.IsAsciiDigit);

    /// <summary>Adds a device; the key is live on a relay once that relay has applied the returned revision.</summary>
    public async Task<Device> AddDeviceAsync(string? accountNumber, byte[] publicKey, CancellationToken ct)
    {
        var device = await Write(async tx =>
        {
            var state = await tx.PeerStateAsync(forUpdate: true);
            var account = await FindAccount(tx, accountNumber);
            if (await tx.CountDevicesAsync(account.Id) >= account.DeviceLimit)
                throw new FleetException(FleetError.DeviceLimit, $"this account already has {account.DeviceLimit} devices; remove one first");
            if (await tx.DeviceKeyExistsAsync(publicKey))
                throw new FleetException(FleetError.Duplicate, "this public key is already in use");
            // Under the peer state's row lock (taken above), so concurrent adds on any instance cannot overshoot; checked
            // before the churn budget is spent, so a refused add costs the account nothing.
            if (state.Devices >= policy.FleetCapacity)
                throw new FleetException(FleetError.FleetFull, "the fleet holds as many devices as it can serve; try again later");
            await CountChurnAsync(tx, account);
            var (slot, fresh) = await NextSlotAsync(tx, state);
            var (ipv4, ipv6) = pool.Allocate(slot);
            long revision = state.Revision + 1;
            byte[] hash = (byte[])state.SetHash.Clone();
            PeerSetHash.Toggle(hash, publicKey, ipv4, ipv6);
            var added = await tx.InsertDeviceAsync(account.Id, publicKey, ipv4, ipv6, revision);
            await tx.InsertChangeAsync(new PeerChange(revision, PeerChangeKind.Add, publicKey, ipv4, ipv6, hash, added.Id));
            await tx.SavePeerStateAsync(new PeerState(revision, hash, fresh ? state.NextAddress + 1 : state.NextAddress, state.Devices + 1));
            await tx.NotifyAsync("peers");
            return added;
        }, ct);
        hub.Poke();
        return device;
    }

    /// <summary>Removes a device; returns the revision at which relays drop the key.</summary>
    public async Task<long> RemoveDeviceAsync(string? accountNumber, long deviceId, CancellationToken ct)
    {
        long revision = await Write(async tx =>
        {
            var state = await tx.PeerStateAsync(forUpdate: true);
            var account = await FindAccount(tx, accountNumber);
            var device = await tx.GetDeviceAsync(account.Id, deviceId) ?? throw new FleetException(FleetError.NotFound, "no such device");
            return (await RemoveDeviceInTx(tx, state, device)).Revision;
        }, ct);
        hub.Poke();
        return revision;
    }

    /// <summary>
    /// Device additions per account in a fixed window (<see cref="CustomerPolicy.DeviceAddsPerWindow"/>), counted in the
    /// add's transaction (so on every instance alike); one more is 429 with the window's end as Retry-After.
    /// </summary>
    private async Task CountChurnAsync(ICustomerTx tx, Account account)
    {
        var (start, count) = await tx.DeviceChurnAsync(account.Id);
        long window = (long)policy.DeviceChurnWindow.TotalMilliseconds;
        if (tx.Now - start >= window || start > tx.Now) (start, count) = (tx.Now, 0);
        if (count >= policy.DeviceAddsPerWindow)
            throw new FleetException(FleetError.RateLimited,
                $"this account added {count} devices in the last {policy.DeviceChurnWindow.TotalHours:0.##} h, as many as it may; retry later")
            { RetryAfter = TimeSpan.FromMilliseconds(start + window - tx.Now) };
        await tx.SetDeviceChurnAsync(account.Id, start, count + 1);
    }

    /// <summary>
    /// The longest-released slot that every peer-receiving relay has seen removed and whose quarantine has passed, or else
    /// the next never-used slot (<paramref name="state"/>'s NextAddress; Fresh says the caller advances it).
    /// </summary>
    private async Task<(long Slot, bool Fresh)> NextSlotAsync(ICustomerTx tx, PeerState state)
    {
        long appliedBy = await tx.MinAppliedRevisionAsync() ?? state.Revision;
        long releasedBefore = tx.Now - (long)policy.AddressQuarantine.TotalMilliseconds;
        return await tx.TakeReleasedAddressAsync(appliedBy, releasedBefore) is { } slot ? (slot, false) : (state.NextAddress, true);
    }

    /// <summary>Removes one device inside the caller's transaction (which holds the peer state lock); returns the new state.</summary>
    private async Task<PeerState> RemoveDeviceInTx(ICustomerTx tx, PeerState state, Device device)
    {
        long revision = state.Revision + 1;
        byte[] hash = (byte[])state.SetHash.Clone();
        PeerSetHash.Toggle(hash, device.PublicKey, device.Ipv4, device.Ipv6);
        await tx.DeleteDeviceAsync(device.Id);
        // Its slot waits in released_addresses until every relay applied this revision and the quarantine passed.
        if (pool.Slot(device.Ipv4, device.Ipv6) is { } slot) await tx.ReleaseAddressAsync(slot, revision);
        await tx.InsertChangeAsync(new PeerChange(revision, PeerChangeKind.Remove, device.PublicKey, device.Ipv4, device.Ipv6, hash, device.Id));
        var next = state with { Revision = revision, SetHash = hash, Devices = state.Devices - 1 };
        await tx.SavePeerStateAsync(next);
        await tx.NotifyAsync("peers");
        return next;
    }

    /// <summary>Staff delete an account with all its devices (one revision per device, one transaction).</summary>
    public async Task<long> DeleteAccountAsync(Staff staff, Account found, string? reason, CancellationToken ct)
    {
        long revision = await Write(async tx =>
        {
            var state = await tx.PeerStateAsync(forUpdate: true);
            var account = found;   // under the peer state lock: its devices cannot change until commit
            foreach (var device in await tx.ListDevicesAsync(account.Id))
                state = await RemoveDeviceInTx(tx, state, device);
            await tx.DeleteAccountAsync(account.Id);
            await tx.AuditAsync(staff.Username, "account.delete", "account " + account.PublicId, reason, null);
            return state.Revision;
        }, ct);
        hub.Poke();
        return revision;
    }

    private static async Task<Account> FindAccount(ICustomerTx tx, string? number) =>
        (IsAccountNumber(number) ? await tx.GetAccountAsync(number!) : null)
        ?? throw new FleetException(FleetError.Unauthenticated, "unknown account number");

    // Transactions through this service's slice of the store only.
    private Task<T> Write<T>(Func<ICustomerTx, Task<T>> work, CancellationToken ct) => store.WriteAsync(tx => work(tx), ct);
    private Task<T> Read<T>(Func<ICustomerTx, Task<T>> work, CancellationToken ct) => store.ReadAsync(tx => work(tx), ct);
}

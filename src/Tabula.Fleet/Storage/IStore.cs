namespace Tabula.Fleet.Storage;

/// <summary>
/// Persistence for the fleet core. Every change happens inside <see cref="WriteAsync{T}"/>: one database
/// transaction that commits as a whole or not at all, so a refused request leaves nothing half-written.
/// Implementations: <see cref="SqlStore"/> with Sqlite/ or Postgres/ dialects (same SQL paths).
/// </summary>
public interface IStore : IAsyncDisposable
{
    /// <summary>"sqlite" or "postgres".</summary>
    string Kind { get; }

    /// <summary>Creates or upgrades the schema; safe to call from several instances at once.</summary>
    Task MigrateAsync(CancellationToken ct);

    /// <summary>Runs <paramref name="work"/> in a write transaction (serialised with other writers where it matters).</summary>
    Task<T> WriteAsync<T>(Func<IStoreTx, Task<T>> work, CancellationToken ct);

    /// <summary>Runs <paramref name="work"/> against one consistent snapshot of the database.</summary>
    Task<T> ReadAsync<T>(Func<IStoreTx, Task<T>> work, CancellationToken ct);

    /// <summary>
    /// Calls <paramref name="onNotification"/> whenever another transaction (in any instance) sent a
    /// notification, until <paramref name="ct"/> fires. SQLite has a single instance: nothing to listen to.
    /// </summary>
    Task ListenAsync(Func<string, Task> onNotification, CancellationToken ct);

    /// <summary>
    /// Sends <paramref name="payload"/> to every instance's <see cref="ListenAsync"/> now, outside any transaction: for
    /// live state that is kept in memory rather than in the database (relay health, issue 18), so every instance sees
    /// it. Nothing on SQLite (one instance). A payload is at most <see cref="FleetLimits.MaxNotificationBytes"/>.
    /// </summary>
    Task PublishAsync(string payload, CancellationToken ct);
}

/// <summary>
/// One transaction with every operation. Each service of Core/ sees it only through its own slice below
/// (<see cref="IStaffTx"/>, <see cref="IEnrollmentTx"/>, <see cref="IMachineTx"/>, <see cref="ICustomerTx"/>, and
/// <see cref="IPeerLogTx"/> for the peer stream), so a service can only touch its own tables.
/// </summary>
public interface IStoreTx : IStaffTx, IEnrollmentTx, IMachineTx, ICustomerTx, IReleaseTx, IRolloutTx, IHealthSampleTx, IAttestationTx;

/// <summary>What every transaction offers: its time, the audit log, notifications to other instances.</summary>
public interface ITx
{
    long Now { get; }

    /// <summary>Records a staff or machine action in the same transaction as the action.</summary>
    Task AuditAsync(string actor, string action, string target, string? reason, string? detail);

    /// <summary>Tells every instance (delivered at commit on PostgreSQL).</summary>
    Task NotifyAsync(string payload);

    /// <summary>The peer set's current revision (relays report against it; the peer stream starts from it).</summary>
    Task<long> HeadRevisionAsync();
}

/// <summary>A machine row by id: enrollment creates and renews it, staff move it through its lifecycle.</summary>
public interface IMachineRowTx : ITx
{
    Task<Machine?> GetMachineAsync(string id, bool forUpdate);
    Task UpdateMachineAsync(Machine machine);
}

/// <summary>Staff accounts, their tokens and TOTP, and reading the audit log.</summary>
public interface IStaffTx : IStaffTokenTx, ILoginTx
{
    Task<long> InsertStaffAsync(string username, StaffRole role, string passwordHash);
    Task<Staff?> GetStaffAsync(string username);
    Task<IReadOnlyList<Staff>> ListStaffAsync();
    Task SetTotpAsync(long staffId, byte[]? secret, bool enabled);
    Task SetTotpLastStepAsync(long staffId, long step);
    Task<long> InsertStaffTokenAsync(byte[] tokenHash, long staffId, string kind, string name, long? expiresAt);
    Task<Staff?> GetStaffByTokenAsync(byte[] tokenHash);
    Task DeleteStaffTokenAsync(byte[] tokenHash);
    /// <summary>Newest first, entries older than <see cref="AuditQuery.Before"/> matching every given filter (substring, any case).</summary>
    Task<IReadOnlyList<AuditEntry>> SearchAuditAsync(AuditQuery query);
}

/// <summary>Enrollment tokens, nonces, allowed packages, and the machine rows an enrollment creates or renews.</summary>
public interface IEnrollmentTx : IMachineRowTx, IEnrollmentTokenTx
{
    Task InsertNonceAsync(byte[] nonce, long expiresAt);
    Task<bool> ConsumeNonceAsync(byte[] nonce);
    Task AllowPackageAsync(string digest, string addedBy);
    /// <summary>Whether <paramref name="digest"/> is allowed; the row stays locked until commit, so a withdrawal waits.</summary>
    Task<bool> IsPackageAllowedAsync(string digest);
    Task<IReadOnlyList<string>> AllowedPackagesAsync();
    /// <summary>Removes <paramref name="digest"/> from the allowed packages; false when it was not allowed.</summary>
    Task<bool> WithdrawPackageAsync(string digest);
    /// <summary>Machines that booted <paramref name="digest"/> and are in <paramref name="state"/>, locked until commit.</summary>
    Task<IReadOnlyList<Machine>> MachinesRunningAsync(string digest, MachineState state);
    Task InsertMachineAsync(Machine machine, byte[] relayTokenHash);
    Task SetRelayTokenAsync(string machineId, byte[] tokenHash);
}

/// <summary>The machine a relay token names: authentication, and the peer stream's re-check of its authority.</summary>
public interface IRelayTokenTx : ITx
{
    Task<Machine?> GetMachineByRelayTokenAsync(byte[] tokenHash);
}

/// <summary>
/// Deleted devices leave no key behind (issue 17): once every relay that receives peers (provisioned, deployed, draining)
/// has applied a revision, the log entries up to it of devices that no longer exist lose their key and set hash and keep
/// their device id. The stream serves nothing at or below that point again (a relay resuming there gets a snapshot).
/// </summary>
public interface IKeyScrubTx : ITx
{
    /// <summary>Scrubs through the lowest revision every streaming relay applied; returns the entries scrubbed.</summary>
    Task<int> ScrubDeletedKeysAsync();
}

/// <summary>Machines after enrollment: lifecycle, placement, relay tokens, applied revisions.</summary>
public interface IMachineTx : IMachineRowTx, IRelayTokenTx, IKeyScrubTx
{
    Task<IReadOnlyList<Machine>> ListMachinesAsync(MachineState? state);
    Task<bool> HostnameTakenAsync(string hostname, string exceptMachineId);
    Task SetAppliedRevisionAsync(string machineId, long revision);
    Task<(long Deployed, long Applied)> CountAppliedAsync(long revision);
    Task<IReadOnlyDictionary<MachineState, long>> CountMachinesByStateAsync();
}

/// <summary>Customer accounts and devices; a device change writes the peer log in the same transaction.</summary>
public interface ICustomerTx : IPeerLogTx, IAccountGateTx
{
    /// <summary>Inserts an account under the HMAC of <paramref name="number"/>; the number itself is not stored.</summary>
    Task<Account> InsertAccountAsync(string number, int deviceLimit);
    /// <summary>The account whose number is <paramref name="number"/> (looked up by its HMAC).</summary>
    Task<Account?> GetAccountAsync(string number);
    /// <summary>The account whose <see cref="Account.PublicId"/> is <paramref name="accountId"/> (staff look-ups).</summary>
    Task<Account?> GetAccountByIdAsync(string accountId);
    Task DeleteAccountAsync(long accountId);
    Task<long> CountAccountsAsync();
    Task<IReadOnlyList<Device>> ListDevicesAsync(long accountId);
    Task<bool> DeviceKeyExistsAsync(byte[] publicKey);
    Task<Device> InsertDeviceAsync(long accountId, byte[] publicKey, string ipv4, string ipv6, long revision);
    Task<Device?> GetDeviceAsync(long accountId, long deviceId);
    Task DeleteDeviceAsync(long deviceId);
}

/// <summary>The revisioned peer set: its state row, the change log, and the snapshot.</summary>
public interface IPeerLogTx : IRelayTokenTx
{
    /// <summary>
    /// The peer state row; with <paramref name="forUpdate"/> it stays locked until commit, so device changes are
    /// serialised fleet-wide and revisions commit in order (a reader never sees revision r+1 without r).
    /// </summary>
    Task<PeerState> PeerStateAsync(bool forUpdate);
    Task SavePeerStateAsync(PeerState state);
    Task<long> CountDevicesAsync(long? accountId);
    Task InsertChangeAsync(PeerChange change);
    Task<IReadOnlyList<PeerChange>> ChangesAfterAsync(long revision, int limit);
    Task<long> OldestChangeAsync();
    Task<int> CompactChangesAsync(long beforeRevision);
    IAsyncEnumerable<SnapshotPeer> AllPeersAsync(CancellationToken ct);
}

/// <summary>The peer state row. <paramref name="Devices"/> counts the devices table, kept with every add and removal under the
/// row's lock, so the fleet capacity is checked in O(1) (schema 6).</summary>
public sealed record PeerState(long Revision, byte[] SetHash, long NextAddress, long Devices);

public readonly record struct SnapshotPeer(byte[] PublicKey, string Ipv4, string Ipv6);

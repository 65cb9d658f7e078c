namespace Tabula.Fleet.Storage;

/// <summary>
/// Rollouts (issue 18): the rollout rows with a lease (one controller instance drives a rollout at a time), their machines,
/// each machine's pinned boot target, and the newest reboot command per machine. The engine works on machines, releases and
/// the audit log in the same transaction, so this slice includes theirs.
/// </summary>
public interface IRolloutTx : IMachineTx, IReleaseTx, IEnrollmentTx
{
    Task<long> InsertRolloutAsync(Rollout rollout);
    /// <summary>A rollout; with <paramref name="forUpdate"/> its row stays locked until commit (every change to it takes the lock).</summary>
    Task<Rollout?> GetRolloutAsync(long id, bool forUpdate);
    Task<Rollout?> LatestRolloutAsync();
    /// <summary>Ids of rollouts that are neither aborted nor completed, oldest first.</summary>
    Task<IReadOnlyList<long>> OpenRolloutIdsAsync();
    Task UpdateRolloutAsync(Rollout rollout);
    /// <summary>
    /// Takes or renews the rollout's lease for <paramref name="owner"/> until <paramref name="until"/> (unix ms) when it is free,
    /// expired or already <paramref name="owner"/>'s. Call with the row locked. False: another instance drives it.
    /// </summary>
    Task<bool> TakeRolloutLeaseAsync(long id, string owner, long until);
    /// <summary>Gives up every lease <paramref name="owner"/> holds (a controller stopping), so another instance takes over at once.</summary>
    Task ReleaseRolloutLeasesAsync(string owner);
    Task InsertRolloutMachineAsync(RolloutMachine machine);
    Task UpdateRolloutMachineAsync(RolloutMachine machine);
    Task<IReadOnlyList<RolloutMachine>> ListRolloutMachinesAsync(long rolloutId);
    /// <summary>Pins the package <paramref name="machineId"/>'s boot tickets name (instead of its class's current one).</summary>
    Task SetMachineTargetAsync(string machineId, string digest, long rolloutId);
    Task<string?> GetMachineTargetAsync(string machineId);
    Task DeleteMachineTargetsAsync(long rolloutId);
    /// <summary>The sequence the next command to <paramref name="machineId"/> gets (one above the last ever issued to it).</summary>
    Task<long> NextCommandSequenceAsync(string machineId);
    Task SaveRebootCommandAsync(RebootCommandRecord command);
    Task<RebootCommandRecord?> GetRebootCommandAsync(string machineId);
    /// <summary>Records the relay's answer to command <paramref name="sequence"/>; false when that is not its newest command.</summary>
    Task<bool> AckRebootCommandAsync(string machineId, long sequence, string ack);
    /// <summary>When the relay last reported a revision at or above the one it had applied (it serves the set), or null.</summary>
    Task<long?> AppliedAtAsync(string machineId);
}

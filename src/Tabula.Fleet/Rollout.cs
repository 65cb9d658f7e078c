namespace Tabula.Fleet;

/// <summary>
/// A rollout's state (issue 18; docs/fleet.md "Rollouts"). Running starts machines; paused and halted start none (the machines
/// already rebooting are still followed and put back in service); aborted and completed are final.
/// </summary>
public enum RolloutState { Running, Paused, Halted, Aborted, Completed }

/// <summary>
/// One machine's step in a rollout: pending → draining (reboot command issued; listed inactive, still serving for the drain) →
/// rebooting (waiting for it to enroll again) → returning (enrolled on the target, deployed again, waiting for it to serve) →
/// done; failed (it halted the rollout) or skipped (it left the rollout's scope: retired, or no longer deployed before its turn).
/// </summary>
public enum RolloutStep { Pending, Draining, Rebooting, Returning, Done, Failed, Skipped }

/// <summary>A rollout as stored. <see cref="Batch"/> or <see cref="MaxUnavailablePercent"/> (or neither: batches of one).</summary>
public sealed record Rollout(long Id, string Channel, long? Release, string Digest, string? MachineClass, RolloutState State, int Canary,
    int? Batch, int? MaxUnavailablePercent, int DrainSeconds, int PerLocationMin, int DeadlineSeconds, int MinServingPercent,
    int BaselineServing, string CreatedBy, long CreatedAt, long UpdatedAt, string? HaltReason)
{
    public bool Final => State is RolloutState.Aborted or RolloutState.Completed;
}

/// <summary>One machine of a rollout, in rollout order (<see cref="Position"/>; the first <see cref="Rollout.Canary"/> are the canaries).</summary>
public sealed record RolloutMachine(long RolloutId, string MachineId, int Position, string? Hostname, string? Location, RolloutStep Step,
    long? StartedAt, long? FinishedAt, string FromSha256, string? BootedSha256, string? Reason, long? EnrolledSeen = null, long? ExpectRevision = null)
{
    public bool InFlight => Step is RolloutStep.Draining or RolloutStep.Rebooting or RolloutStep.Returning;
}

/// <summary>How the engine runs rollouts: <paramref name="CommandLifetime"/>, how long a reboot command is valid (FleetOptions).</summary>
public sealed record RolloutSettings(TimeSpan CommandLifetime);

/// <summary>The newest reboot command issued to a machine and what its relay answered (null: nothing yet).</summary>
public sealed record RebootCommandRecord(string MachineId, long Sequence, string Command, long RolloutId, long IssuedAt, long ExpiresAt,
    long? AckedAt, string? Ack);

public static class RolloutNames
{
    public static string Name(this RolloutState state) => state switch
    {
        RolloutState.Running => "running", RolloutState.Paused => "paused", RolloutState.Halted => "halted",
        RolloutState.Aborted => "aborted", RolloutState.Completed => "completed",
        _ => throw new ArgumentOutOfRangeException(nameof(state)),
    };

    public static string Name(this RolloutStep step) => step switch
    {
        RolloutStep.Pending => "pending", RolloutStep.Draining => "draining", RolloutStep.Rebooting => "rebooting",
        RolloutStep.Returning => "returning", RolloutStep.Done => "done", RolloutStep.Failed => "failed", RolloutStep.Skipped => "skipped",
        _ => throw new ArgumentOutOfRangeException(nameof(step)),
    };

    public static RolloutState ParseState(string text) =>
        Enum.GetValues<RolloutState>().FirstOrDefault(s => s.Name() == text, RolloutState.Halted);

    public static RolloutStep ParseStep(string text) =>
        Enum.GetValues<RolloutStep>().FirstOrDefault(s => s.Name() == text, RolloutStep.Failed);
}

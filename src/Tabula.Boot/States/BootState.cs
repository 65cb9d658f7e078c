namespace Tabula.Boot.States;

/// <summary>
/// One state of the boot (one file each). <see cref="Run"/> does the state's work and says what comes next; it
/// never throws for anything expected: refusals and failures become a <see cref="Recover"/> state carrying a
/// <see cref="BootFailure"/>. The machine (<see cref="BootMachine"/>) times each state for the timeline.
/// <code>
/// MountFileSystems → LoadModules → LoadConfiguration ─┬─ network or freshness ─→ ConfigureNetwork → FetchPackage(0)
///                                                      └─ initramfs ─────────────────────────────→ FetchPackage(0)
/// FetchPackage(0) under a freshness policy, no ticket yet this attempt → RequestTicket → FetchPackage(0)
///   (required and no ticket → Recover: nothing is downloaded that could not boot)
/// FetchPackage(i) → VerifyPackage → [CheckFreshness, under a freshness policy] → Measure → StageKexec → HandOver (reboot KEXEC; returns only in a dry run)
///   a refused package (signatures or freshness) from pointer i, more pointers left → FetchPackage(i+1)
/// any failure → Recover(failure, resume) → wait → resume          (FetchPackage(0) after fetch/verify/kexec failures)
///             → after --rounds failed rounds → Restart (reboot RESTART)
/// </code>
/// </summary>
internal abstract class BootState
{
    /// <summary>The stage name on the console and in the timeline.</summary>
    public abstract string Name { get; }

    public abstract Transition Run(BootContext context);
}

/// <summary>What a state decided.</summary>
internal abstract record Transition
{
    /// <summary>Go on with <paramref name="State"/>.</summary>
    public sealed record Next(BootState State) : Transition;

    /// <summary>The boot is over (only reachable in a dry run: the real machine is gone by then).</summary>
    public sealed record Stop(BootOutcome Outcome) : Transition;

    public static Transition To(BootState state) => new Next(state);
}

/// <summary>How a boot ended, as a value for tests and the dry run.</summary>
internal abstract record BootOutcome
{
    /// <summary>reboot(KEXEC) was called for this verified archive and command line.</summary>
    public sealed record Kexecuted(string OsPackageSha256, string CommandLine) : BootOutcome;

    /// <summary>reboot(RESTART) after too many failed rounds; <paramref name="Last"/> is the last failure.</summary>
    public sealed record Restarted(BootFailure Last, int FailedRounds) : BootOutcome;
}

using Tabula.Linux;
using Tabula.Machine.Modules;
using Tabula.Machine.Mounts;
using Tabula.Machine.Network;

namespace Tabula.Machine.Init;

/// <summary>One run of one stage: how long it took and what it returned or threw.</summary>
public readonly record struct StageAttempt<T>(string Stage, TimeSpan Took, T? Value, Exception? Failure)
{
    /// <summary>True when the stage returned.</summary>
    public bool Succeeded => Failure is null;
}

/// <summary>What the runner tells the program's console when a retried stage ends or fails.</summary>
public interface IStageReporter
{
    /// <summary>The stage is done after <paramref name="took"/>; <paramref name="detail"/> is what it did.</summary>
    void StageDone(string stage, TimeSpan took, string detail);

    /// <summary>The stage failed with <paramref name="reason"/> (the typed reason's name) and will be tried again.</summary>
    void StageFailed(string stage, string reason, string detail);
}

/// <summary>
/// The staged runner both PID-1 programs use: it runs a stage, times it and turns whatever the stage threw into a
/// value (<see cref="Attempt{T}"/>, used by stboot's state machine, which decides itself where a failure leads), or
/// runs a bring-up stage until it succeeds, reporting each failure with its typed reason (<see cref="UntilDone{T}"/>,
/// used by the relay). Only <see cref="OutOfMemoryException"/> passes through: PID 1 cannot report it meaningfully.
/// </summary>
public sealed class StageRunner(TimeProvider time, Action<TimeSpan> sleep)
{
    /// <summary>Runs <paramref name="run"/> once.</summary>
    public StageAttempt<T> Attempt<T>(string stage, Func<T> run)
    {
        long started = time.GetTimestamp();
        try
        {
            T value = run();
            return new StageAttempt<T>(stage, time.GetElapsedTime(started), value, null);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return new StageAttempt<T>(stage, time.GetElapsedTime(started), default, e);
        }
    }

    /// <summary>
    /// Runs <paramref name="run"/> until it returns, waiting <paramref name="pause"/> after each failure; each end is
    /// reported through <paramref name="reporter"/> (the detail of a failure says which attempt it was). Bounded in
    /// time per attempt by the stage itself; a bring-up stage of PID 1 has nothing better to do than try again.
    /// </summary>
    public T UntilDone<T>(string stage, Func<(T Value, string Detail)> run, IStageReporter reporter, TimeSpan pause)
    {
        for (int attempt = 1; ; attempt++)
        {
            var result = Attempt(stage, run);
            if (result.Succeeded)
            {
                reporter.StageDone(stage, result.Took, result.Value.Detail);
                return result.Value.Value;
            }
            var e = result.Failure!;
            reporter.StageFailed(stage, ReasonOf(e), $"{e.Message} (attempt {attempt}; retrying in {pause.TotalSeconds:0}s)");
            sleep(pause);
        }
    }

    /// <summary>
    /// The console reason of a failure: the typed reason of the machine layer's and the programs' exceptions, the
    /// errno of a failed kernel call, else the exception's type (a bug: nothing typed it).
    /// </summary>
    public static string ReasonOf(Exception e) => e switch
    {
        StageException s => s.ReasonName,
        NetworkException n => n.Error.ToString(),
        MountRefusedException m => m.Reason.ToString(),
        ModuleIndexException i => i.Reason.ToString(),
        LinuxException l => l.Errno.ToString(),
        _ => e.GetType().Name,
    };
}

using Tabula.Boot.States;
using Tabula.Machine.Init;

namespace Tabula.Boot;

/// <summary>
/// Runs states until one stops the boot (see <see cref="BootState"/> for the graph) on the machine layer's
/// <see cref="StageRunner"/>, which times each for the timeline. A state that throws Boot's typed failure
/// (<see cref="StageException{TReason}"/> of <see cref="FailureReason"/>) recovers with that reason; any other exception
/// is a bug, still reported as one typed line (<see cref="FailureReason.Unexpected"/>) and retried like any failure,
/// because PID 1 must not exit.
/// </summary>
internal static class BootMachine
{
    public static BootOutcome Run(BootContext context, BootState first)
    {
        BootState state = first;
        var runner = new StageRunner(context.Environment.Time, context.Environment.Sleep);
        while (true)
        {
            var attempt = runner.Attempt(state.Name, () => state.Run(context));
            Transition transition;
            if (attempt.Succeeded)
                transition = attempt.Value!;
            else
            {
                var e = attempt.Failure!;
                var failure = e is StageException<FailureReason> typed
                    ? new BootFailure(state.Name, typed.Reason, typed.Detail)
                    : new BootFailure(state.Name, FailureReason.Unexpected, $"{e.GetType().Name}: {e.Message}");
                BootState resume = context.Configuration is null ? new LoadConfiguration() : new FetchPackage(0);
                transition = Transition.To(state is Recover or Restart ? new Restart(failure) : new Recover(failure, resume));
            }
            context.Timeline.Add((state.Name, attempt.Took));
            switch (transition)
            {
                case Transition.Next next:
                    state = next.State;
                    break;
                case Transition.Stop stop:
                    return stop.Outcome;
            }
        }
    }

    /// <summary>Version string for the console.</summary>
    public static string Version => typeof(BootMachine).Assembly.GetName().Version?.ToString() ?? "?";
}

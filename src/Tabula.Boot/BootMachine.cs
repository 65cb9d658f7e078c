using Tabula.Boot.States;

namespace Tabula.Boot;

/// <summary>
/// Runs states until one stops the boot (see <see cref="BootState"/> for the graph), timing each for the timeline.
/// An exception a state did not turn into a failure is a bug; it is still reported as one typed line and retried
/// like any failure, because PID 1 must not exit.
/// </summary>
internal static class BootMachine
{
    public static BootOutcome Run(BootContext context, BootState first)
    {
        BootState state = first;
        var time = context.Environment.Time;
        while (true)
        {
            long started = time.GetTimestamp();
            Transition transition;
            try
            {
                transition = state.Run(context);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                var failure = new BootFailure(state.Name, FailureReason.Unexpected, $"{e.GetType().Name}: {e.Message}");
                BootState resume = context.Configuration is null ? new LoadConfiguration() : new FetchPackage(0);
                transition = Transition.To(state is Recover or Restart ? new Restart(failure) : new Recover(failure, resume));
            }
            context.Timeline.Add((state.Name, time.GetElapsedTime(started)));
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

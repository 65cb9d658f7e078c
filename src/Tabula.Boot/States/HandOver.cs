using Tabula.Linux;

namespace Tabula.Boot.States;

/// <summary>Prints the timeline, then reboot(LINUX_REBOOT_CMD_KEXEC). Returns only in a dry run.</summary>
internal sealed class HandOver(string sha256, string cmdline) : BootState
{
    public override string Name => "handover";

    public override Transition Run(BootContext context)
    {
        // One entry per stage, summed over rounds (fetch and verify repeat after failures; recover holds the waits).
        var stages = context.Timeline.GroupBy(s => s.Stage)
            .Select(g => (g.Key, g.Aggregate(TimeSpan.Zero, (sum, s) => sum + s.Took)));
        context.Log.Timeline(stages, context.Timeline.Aggregate(TimeSpan.Zero, (sum, s) => sum + s.Took), context.FailedRounds);
        try
        {
            context.Environment.Kexec.Execute();
        }
        catch (LinuxException e)
        {
            return Transition.To(new Recover(new BootFailure(Name, FailureReason.KexecFailed, e.Message), new FetchPackage(0)));
        }
        return new Transition.Stop(new BootOutcome.Kexecuted(sha256, cmdline));
    }
}

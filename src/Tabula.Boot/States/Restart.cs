namespace Tabula.Boot.States;

/// <summary>reboot(RESTART): the firmware starts over (upstream's Recover). Returns only in a dry run.</summary>
internal sealed class Restart(BootFailure last) : BootState
{
    public override string Name => "restart";

    public override Transition Run(BootContext context)
    {
        context.Log.Restarting($"after {context.FailedRounds} failed rounds; last: {last}");
        context.Environment.Power.Restart();
        return new Transition.Stop(new BootOutcome.Restarted(last, context.FailedRounds));
    }
}

namespace Tabula.Boot.States;

/// <summary>
/// A failed round: the one-line typed reason (stage, reason, URL, detail), then either a pause and
/// <paramref name="resume"/>, or, after <see cref="BootOptions.MaxRounds"/> failed rounds, a restart.
/// </summary>
internal sealed class Recover(BootFailure failure, BootState resume) : BootState
{
    public BootFailure Failure { get; } = failure;

    public override string Name => "recover";

    public override Transition Run(BootContext context)
    {
        context.FailedRounds++;
        context.Round?.Dispose();   // a new attempt asks for a new ticket with a new nonce
        context.Round = null;
        context.Freshness = null;
        if (context.FailedRounds >= context.Options.MaxRounds)
        {
            context.Log.GivingUp(Failure, context.FailedRounds);
            return Transition.To(new Restart(Failure));
        }
        context.Log.RoundFailed(Failure, context.FailedRounds, context.Options.MaxRounds, context.Options.RetryWait);
        context.Environment.Sleep(context.Options.RetryWait);
        return Transition.To(resume);
    }
}

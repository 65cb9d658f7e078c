namespace Tabula.Relay;

/// <summary>Retry delays for calls to the controller: 1 s doubling to 30 s, each with ±25 % jitter so a fleet that lost
/// its controller does not come back in lockstep.</summary>
internal sealed class Backoff
{
    static readonly TimeSpan First = TimeSpan.FromSeconds(1), Max = TimeSpan.FromSeconds(30);
    TimeSpan next = First;

    /// <summary>The delay to wait now; the one after it is twice as long, up to the maximum.</summary>
    public TimeSpan Next()
    {
        var delay = next * (0.75 + Random.Shared.NextDouble() / 2);
        next = next * 2 > Max ? Max : next * 2;
        return delay;
    }

    /// <summary>Starts again from the first delay (after a call that worked for a while).</summary>
    public void Reset() => next = First;
}

namespace Tabula.Fleet.Tests;

/// <summary>A clock the test moves by hand (backoffs, expiries, quarantines, retention), for the controller's TimeProvider.</summary>
public sealed class ManualClock : TimeProvider
{
    private DateTimeOffset now = DateTimeOffset.UtcNow;
    public override DateTimeOffset GetUtcNow() => now;
    public void Advance(TimeSpan by) => now += by;
}

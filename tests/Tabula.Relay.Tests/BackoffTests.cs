namespace Tabula.Relay.Tests;

public sealed class BackoffTests
{
    [Fact]
    public void Delays_double_to_30_seconds_with_jitter_and_start_over_after_reset()
    {
        var backoff = new Backoff();
        double[] seconds = [.. Enumerable.Range(0, 8).Select(_ => backoff.Next().TotalSeconds)];
        double[] nominal = [1, 2, 4, 8, 16, 30, 30, 30];
        for (int i = 0; i < nominal.Length; i++)
            Assert.InRange(seconds[i], nominal[i] * 0.75, nominal[i] * 1.25);
        backoff.Reset();
        Assert.InRange(backoff.Next().TotalSeconds, 0.75, 1.25);
    }
}

using Tabula.Linux;
using Tabula.Machine.Init;

namespace Tabula.Machine.Tests;

/// <summary>The staged runner and the PID-1 host both programs stand on.</summary>
public sealed class StageRunnerTests
{
    enum Why { Broken }

    sealed class Reporter : IStageReporter
    {
        public List<string> Lines { get; } = [];
        public void StageDone(string stage, TimeSpan took, string detail) => Lines.Add($"done {stage} {detail}");
        public void StageFailed(string stage, string reason, string detail) => Lines.Add($"failed {stage} {reason} {detail}");
    }

    [Fact]
    public void A_stage_is_retried_with_its_typed_reason_until_it_succeeds()
    {
        var sleeps = new List<TimeSpan>();
        var reporter = new Reporter();
        int calls = 0;
        int value = new StageRunner(TimeProvider.System, sleeps.Add).UntilDone("network", () => ++calls switch
        {
            1 => throw new StageException<Why>("network", Why.Broken, "cable"),
            2 => throw new LinuxException("bind", (int)Errno.EADDRINUSE),
            3 => throw new InvalidOperationException("bug"),
            _ => (42, "up"),
        }, reporter, TimeSpan.FromSeconds(5));

        Assert.Equal(42, value);
        Assert.Equal(3, sleeps.Count);
        Assert.StartsWith("failed network Broken cable (attempt 1; retrying in 5s)", reporter.Lines[0]);
        Assert.StartsWith("failed network EADDRINUSE ", reporter.Lines[1]);
        Assert.StartsWith("failed network InvalidOperationException bug (attempt 3;", reporter.Lines[2]);
        Assert.Equal("done network up", reporter.Lines[3]);
    }

    [Fact]
    public void An_attempt_is_a_value_with_its_duration()
    {
        var runner = new StageRunner(TimeProvider.System, _ => { });
        var failed = runner.Attempt<int>("fetch", () => throw new StageException<Why>("fetch", Why.Broken, "x"));
        Assert.False(failed.Succeeded);
        Assert.Equal("Broken", Assert.IsType<StageException<Why>>(failed.Failure).ReasonName);
        Assert.Equal(7, runner.Attempt("fetch", () => 7).Value);
    }

    [Fact]
    public void The_host_keeps_making_attempts_and_reports_what_they_throw()
    {
        var attempts = new List<int>();
        var reports = new List<string>();
        var pauses = new List<TimeSpan>();
        var done = new InvalidOperationException("stop the test");
        // Forever never returns; the test leaves it through a sleep that throws after the fourth attempt.
        var left = Assert.Throws<InvalidOperationException>(() => InitHost.Forever(
            n => { attempts.Add(n); if (n % 2 == 0) throw new IOException($"attempt {n}"); },
            (n, e) => { reports.Add($"{n}:{e.Message}"); throw new Exception("the console broke too"); },
            n => TimeSpan.FromSeconds(n),
            pause => { pauses.Add(pause); if (pauses.Count == 4) throw done; }));
        Assert.Same(done, left);
        Assert.Equal([0, 1, 2, 3], attempts);
        Assert.Equal(["0:attempt 0", "2:attempt 2"], reports);
        Assert.Equal([1, 2, 3, 4], pauses.Select(p => (int)p.TotalSeconds));
    }
}

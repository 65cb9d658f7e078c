using System.Diagnostics;
using Tabula.Testing;
using Xunit.Abstractions;

namespace Tabula.Fuzz.Tests;

/// <summary>
/// The bounded afl++ run (scripts/fuzz) over every target, on this test's own build of Tabula.Fuzz. Without afl-fuzz
/// it is skipped, except under CI, where it fails. 15 s per target under CI (about 7 minutes for the 22 targets of
/// December 2026, counting each target's start-up), 3 s elsewhere so a local `dotnet test` stays short;
/// TABULA_FUZZ_SECONDS overrides both.
/// </summary>
public sealed class AflTests(ITestOutputHelper output)
{
    [ToolsFact("afl-fuzz")]
    public void Afl_finds_no_crash_in_any_target()
    {
        Prerequisites.Require(needsRoot: false, "afl-fuzz");
        int seconds = int.TryParse(Environment.GetEnvironmentVariable("TABULA_FUZZ_SECONDS"), out int s) && s > 0 ? s
            : Prerequisites.IsCi ? 15 : 3;
        int targets = Enum.GetValues<FuzzTarget>().Length;
        var start = new ProcessStartInfo(Path.Combine(Corpus.RepositoryRoot, "scripts", "fuzz"))
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (string argument in new[] { "--bin", AppContext.BaseDirectory, seconds.ToString() })
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start scripts/fuzz");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        // Bounded: the run takes targets × seconds plus instrumentation and afl's start-up per target.
        var limit = TimeSpan.FromSeconds(targets * (seconds + 30) + 180);
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"scripts/fuzz did not finish within {limit}\n{stdout.Result}\n{stderr.Result}");
        }
        string log = stdout.Result + stderr.Result;
        output.WriteLine(stdout.Result);
        Assert.True(process.ExitCode == 0, $"scripts/fuzz exited {process.ExitCode}:\n{log}");
        Assert.Contains($"fuzz: {targets} targets, {seconds}s each, no crash", log);
    }
}

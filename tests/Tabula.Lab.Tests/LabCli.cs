using System.Diagnostics;
using System.Text;

namespace Tabula.Lab.Tests;

/// <summary>The real CLI for the lab tests: <c>dotnet tabula.dll ARGS</c> (the CLI build copied next to the tests), without the
/// caller's TABULA_* environment, stderr (progress) echoed to the test output as it comes, bounded in time.</summary>
internal sealed class LabCli(ITestOutputHelper output)
{
    static readonly string Cli = Path.Combine(AppContext.BaseDirectory, "tabula.dll");

    /// <summary>Runs `tabula ARGS`; kills it (and its children) after <paramref name="timeout"/>.</summary>
    public (int Code, string Stdout, string Stderr) Run(TimeSpan timeout, params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { Cli }.Concat(arguments))
            start.ArgumentList.Add(a);
        foreach (string key in start.Environment.Keys.Where(k => k.StartsWith("TABULA_", StringComparison.Ordinal)).ToArray())
            start.Environment.Remove(key);
        using var process = Process.Start(start)!;
        var stderr = new StringBuilder();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (stderr) stderr.AppendLine(e.Data);
            output.WriteLine(e.Data);
        };
        process.BeginErrorReadLine();
        var stdout = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"tabula {string.Join(' ', arguments)} took over {timeout.TotalMinutes:0} minutes");
        }
        process.WaitForExit();
        lock (stderr) return (process.ExitCode, stdout.Result, stderr.ToString());
    }

    /// <summary>Command lines of the processes (other than this one) that contain <paramref name="text"/>.</summary>
    public static IReadOnlyList<string> ProcessesNaming(string text) =>
        Directory.EnumerateDirectories("/proc")
            .Where(d => int.TryParse(Path.GetFileName(d), out int pid) && pid != Environment.ProcessId)
            .Select(d => { try { return File.ReadAllText(Path.Combine(d, "cmdline")).Replace('\0', ' '); } catch (IOException) { return ""; } })
            .Where(line => line.Contains(text, StringComparison.Ordinal))
            .ToList();
}

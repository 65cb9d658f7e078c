using System.Diagnostics;
using System.Text;

namespace Tabula.Cli.Tests;

/// <summary>What a finished child process left behind.</summary>
public sealed record ProcessOutput(string Command, int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Everything, for assertion messages.</summary>
    public override string ToString() => $"$ {Command}\nexit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Runs a program with arguments (no shell), a timeout and captured output.</summary>
public static class ProcessRunner
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(120);

    public static ProcessOutput Run(string file, IEnumerable<string> args, string? workingDirectory = null, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        string command = $"{file} {string.Join(' ', start.ArgumentList.Select(Quote))}";
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? DefaultTimeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new TimeoutException($"{command} did not finish within {(timeout ?? DefaultTimeout).TotalSeconds} s");
        }
        process.WaitForExit(); // drains the redirected streams
        return new ProcessOutput(command, process.ExitCode, stdout.Result, stderr.Result);
    }

    private static string Quote(string arg) =>
        arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@".Contains(c)) ? arg : $"'{arg.Replace("'", "'\\''")}'";
}

using System.Diagnostics;
using System.Text;

namespace Tabula.Testing;

/// <summary>What a finished child process left behind.</summary>
public sealed record ProcessOutput(string Command, int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Exit code and both outputs, for `var (exit, stdout, stderr) = …`.</summary>
    public void Deconstruct(out int exitCode, out string stdout, out string stderr) =>
        (exitCode, stdout, stderr) = (ExitCode, Stdout, Stderr);

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
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        return Run(start, timeout);
    }

    /// <summary>Runs <paramref name="start"/> (its output redirected here, its input closed) to the end or the timeout.</summary>
    public static ProcessOutput Run(ProcessStartInfo start, TimeSpan? timeout = null)
    {
        start.UseShellExecute = false;
        start.RedirectStandardInput = start.RedirectStandardOutput = start.RedirectStandardError = true;
        string file = start.FileName;
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

    /// <summary><see cref="Run(ProcessStartInfo, TimeSpan?)"/> without blocking a thread while it runs.</summary>
    public static async Task<ProcessOutput> RunAsync(ProcessStartInfo start, TimeSpan? timeout = null)
    {
        start.UseShellExecute = false;
        start.RedirectStandardInput = start.RedirectStandardOutput = start.RedirectStandardError = true;
        string command = $"{start.FileName} {string.Join(' ', start.ArgumentList.Select(Quote))}";
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {start.FileName}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try { await process.WaitForExitAsync(deadline.Token); }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"{command} did not finish within {(timeout ?? DefaultTimeout).TotalSeconds} s");
        }
        return new ProcessOutput(command, process.ExitCode, await stdout, await stderr);
    }

    private static string Quote(string arg) =>
        arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@".Contains(c)) ? arg : $"'{arg.Replace("'", "'\\''")}'";
}

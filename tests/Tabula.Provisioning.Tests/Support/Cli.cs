using System.Diagnostics;
using System.Text;

namespace Tabula.Provisioning.Tests.Support;

public sealed record CliResult(int ExitCode, string Stdout, string Stderr);

/// <summary>Runs the real `tabula` program (the CLI project's build output, copied next to the tests).</summary>
public static class TabulaCli
{
    static readonly string Dll = Path.Combine(AppContext.BaseDirectory, "tabula.dll");

    public static ProcessStartInfo StartInfo(string workingDirectory, IReadOnlyDictionary<string, string>? env, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Dll);
        foreach (string a in args)
            info.ArgumentList.Add(a);
        // Keep the developer's or CI's TABULA_* settings out of the server under test.
        foreach (string key in info.Environment.Keys.Where(k => k.StartsWith("TABULA_", StringComparison.Ordinal)).ToArray())
            info.Environment.Remove(key);
        foreach (var (key, value) in env ?? new Dictionary<string, string>())
            info.Environment[key] = value;
        return info;
    }

    public static async Task<CliResult> RunAsync(string workingDirectory, params string[] args) =>
        await RunAsync(workingDirectory, null, args);

    public static async Task<CliResult> RunAsync(string workingDirectory, IReadOnlyDictionary<string, string>? env, params string[] args)
    {
        using var process = Process.Start(StartInfo(workingDirectory, env, args))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }
}

/// <summary>`tabula provisioning serve` as a child process; the URL is read from its "listening on" log line.</summary>
public sealed class ServerProcess : IAsyncDisposable
{
    readonly Process process;
    readonly StringBuilder log = new();

    ServerProcess(Process process, Uri url)
    {
        this.process = process;
        Url = url;
    }

    public Uri Url { get; }
    public int Id => process.Id;
    public string Log { get { lock (log) return log.ToString(); } }

    public static async Task<ServerProcess> StartAsync(string workingDirectory, string configFile)
    {
        var process = Process.Start(TabulaCli.StartInfo(workingDirectory, null, "provisioning", "serve", "--config", configFile))!;
        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var logText = new StringBuilder();
        void OnLine(string? line)
        {
            if (line is null)
                return;
            lock (logText)
                logText.AppendLine(line);
            const string marker = "listening on ";
            int at = line.IndexOf(marker, StringComparison.Ordinal);
            if (at >= 0)
                listening.TrySetResult(new Uri(line[(at + marker.Length)..].Split(',')[0].Trim().Replace("127.0.0.1", "localhost")));
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var exited = process.WaitForExitAsync();
        var first = await Task.WhenAny(listening.Task, exited, Task.Delay(TimeSpan.FromSeconds(30)));
        if (first != listening.Task)
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
            lock (logText)
                throw new InvalidOperationException("server did not start:\n" + logText);
        }
        var server = new ServerProcess(process, await listening.Task);
        lock (logText)
            server.log.Append(logText);
        return server;
    }

    /// <summary>SIGKILL: no shutdown code runs, as in a crash or power loss of the process.</summary>
    public async Task KillAsync()
    {
        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
            await KillAsync();
        process.Dispose();
    }
}

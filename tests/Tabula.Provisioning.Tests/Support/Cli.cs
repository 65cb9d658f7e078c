using System.Diagnostics;
using System.Text;

namespace Tabula.Provisioning.Tests.Support;

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
        var process = Process.Start(TabulaCli.StartInfo(["provisioning", "serve", "--config", configFile], workingDirectory))!;
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

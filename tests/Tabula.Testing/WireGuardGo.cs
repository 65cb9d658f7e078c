using System.Diagnostics;

namespace Tabula.Testing;

/// <summary>
/// A wireguard-go daemon (Debian's package) in the foreground inside a network namespace, with its UAPI socket in
/// /var/run/wireguard/NAME.sock. The socket path is not per namespace, so names are unique per test process.
/// Dispose kills it and removes a stale socket.
/// </summary>
public sealed class WireGuardGo : IDisposable
{
    static int counter;
    readonly Process process;

    WireGuardGo(Process process, string name) => (this.process, InterfaceName) = (process, name);

    public string InterfaceName { get; }

    public string SocketPath => $"/var/run/wireguard/{InterfaceName}.sock";

    /// <summary>A unique interface name: "tw" + a letter + pid and counter digits, at most 15 characters.</summary>
    public static string UniqueName(char tag) =>
        $"tw{tag}{Environment.ProcessId % 100000}x{Interlocked.Increment(ref counter)}";

    public static WireGuardGo Start(NetworkNamespace ns, string? name = null)
    {
        name ??= UniqueName('g');
        var start = new ProcessStartInfo("ip")
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        foreach (string a in new[] { "netns", "exec", ns.Name, Prerequisites.FindOnPath("wireguard-go") ?? "wireguard-go", "-f", name })
            start.ArgumentList.Add(a);
        start.Environment["LOG_LEVEL"] = "error";
        start.Environment["WG_PROCESS_FOREGROUND"] = "1";
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start wireguard-go");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var daemon = new WireGuardGo(process, name);
        var deadline = Stopwatch.StartNew();
        while (!File.Exists(daemon.SocketPath))
        {
            if (process.HasExited || deadline.Elapsed > TimeSpan.FromSeconds(10))
            {
                daemon.Dispose();
                throw new InvalidOperationException($"wireguard-go {name} did not create its UAPI socket");
            }
            Thread.Sleep(20);
        }
        return daemon;
    }

    public void Dispose()
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException) { }
        process.Dispose();
        try { File.Delete(SocketPath); } catch (IOException) { }
    }
}

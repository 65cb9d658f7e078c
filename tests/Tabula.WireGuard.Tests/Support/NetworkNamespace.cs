using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Tabula.WireGuard.Tests.Support;

/// <summary>
/// A network namespace made for one test with <c>ip netns add</c> and deleted on dispose (its interfaces go with
/// it). <see cref="RunInside{T}"/> runs code on a dedicated thread that setns(2)es in, for the kernel clients whose
/// netlink sockets bind to the calling thread's namespace.
/// </summary>
public sealed partial class NetworkNamespace : IDisposable
{
    static int counter;

    NetworkNamespace(string name) => Name = name;

    public string Name { get; }

    /// <summary>Creates tbwg-PREFIX-PID-N with loopback up.</summary>
    public static NetworkNamespace Create(string prefix)
    {
        string name = $"tbwg-{prefix}-{Environment.ProcessId}-{Interlocked.Increment(ref counter)}";
        Prerequisites.Run("ip", "netns", "add", name);
        var ns = new NetworkNamespace(name);
        try { ns.Ip("link", "set", "lo", "up"); }
        catch { ns.Dispose(); throw; }
        return ns;
    }

    /// <summary><c>ip -n NAME ARGS</c>.</summary>
    public string Ip(params string[] arguments) => Prerequisites.Run("ip", ["-n", Name, .. arguments]);

    /// <summary><c>ip netns exec NAME COMMAND ARGS</c>.</summary>
    public string Exec(string command, params string[] arguments) =>
        Prerequisites.Run("ip", ["netns", "exec", Name, command, .. arguments]);

    /// <summary>Runs <paramref name="action"/> on a thread inside the namespace.</summary>
    public T RunInside<T>(Func<T> action)
    {
        T? result = default;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                using SafeFileHandle ns = File.OpenHandle($"/run/netns/{Name}", FileMode.Open, FileAccess.Read);
                if (SetNamespace(ns, CLONE_NEWNET) != 0)
                    throw new InvalidOperationException($"setns({Name}) failed: errno {Marshal.GetLastPInvokeError()}");
                result = action();
            }
            catch (Exception e) { failure = e; }
        });
        thread.Start();
        thread.Join();
        if (failure is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        return result!;
    }

    public void RunInside(Action action) => RunInside(() => { action(); return 0; });

    public void Dispose()
    {
        try { Prerequisites.Run("ip", "netns", "del", Name); }
        catch (InvalidOperationException) { }
    }

    const int CLONE_NEWNET = 0x40000000;

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNamespace(SafeFileHandle fd, int type);
}

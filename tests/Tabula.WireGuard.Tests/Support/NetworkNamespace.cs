using Tabula.Linux;

namespace Tabula.WireGuard.Tests.Support;

/// <summary>
/// A network namespace made for one test with <c>ip netns add</c> and deleted on dispose (its interfaces go with
/// it). <see cref="RunInside{T}"/> runs code on a dedicated thread that setns(2)es in, for the kernel clients whose
/// netlink sockets bind to the calling thread's namespace.
/// </summary>
public sealed class NetworkNamespace : IDisposable
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

    /// <summary>Runs <paramref name="action"/> on a thread inside the namespace (Tabula.Linux.Namespaces.RunInside).</summary>
    public T RunInside<T>(Func<T> action) => Namespaces.RunInside($"/run/netns/{Name}", NamespaceKind.Network, action);

    public void RunInside(Action action) => RunInside(() => { action(); return 0; });

    public void Dispose()
    {
        try { Prerequisites.Run("ip", "netns", "del", Name); }
        catch (InvalidOperationException) { }
    }
}

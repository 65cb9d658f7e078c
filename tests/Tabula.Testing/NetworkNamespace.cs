using Microsoft.Win32.SafeHandles;
using Tabula.Linux;

namespace Tabula.Testing;

/// <summary>
/// A network namespace made for one test with <c>ip netns add</c> and deleted on dispose. Code runs inside it on a
/// dedicated thread that setns(2)es in; sockets opened there stay in the namespace after the thread ends.
/// </summary>
public sealed class NetworkNamespace : IDisposable
{
    static int counter;

    NetworkNamespace(string name) => Name = name;

    /// <summary>The name under /run/netns.</summary>
    public string Name { get; }

    /// <summary>Creates a namespace named tabula-PREFIX-PID-N with loopback up.</summary>
    public static NetworkNamespace Create(string prefix)
    {
        string name = $"tabula-{prefix}-{Environment.ProcessId}-{Interlocked.Increment(ref counter)}";
        Prerequisites.Run("ip", "netns", "add", name);
        var ns = new NetworkNamespace(name);
        try { ns.Ip("link", "set", "lo", "up"); }
        catch { ns.Dispose(); throw; }
        return ns;
    }

    /// <summary>Runs <c>ip -n NAME ARGS</c> and returns its output.</summary>
    public string Ip(params string[] arguments) => Prerequisites.Run("ip", ["-n", Name, .. arguments]);

    /// <summary>Runs <c>ip netns exec NAME COMMAND ARGS</c> and returns its output.</summary>
    public string Exec(string command, params string[] arguments) =>
        Prerequisites.Run("ip", ["netns", "exec", Name, command, .. arguments]);

    /// <summary>Runs <paramref name="action"/> on a thread inside the namespace and returns its result.</summary>
    public T RunInside<T>(Func<T> action) => Namespaces.RunInside($"/run/netns/{Name}", NamespaceKind.Network, action);

    /// <summary>Runs <paramref name="action"/> on a thread inside the namespace.</summary>
    public void RunInside(Action action) => RunInside(() => { action(); return 0; });

    /// <summary>True when a TCP connection to <paramref name="endpoint"/> from inside the namespace succeeds (a server is up).</summary>
    public bool CanConnect(System.Net.IPEndPoint endpoint) => RunInside(() =>
    {
        using var probe = new System.Net.Sockets.Socket(endpoint.AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        try { probe.Connect(endpoint); return true; }
        catch (System.Net.Sockets.SocketException) { return false; }
    });

    /// <summary>Deletes the namespace (its interfaces go with it).</summary>
    public void Dispose()
    {
        try { Prerequisites.Run("ip", "netns", "del", Name); }
        catch (InvalidOperationException) { }
    }
}

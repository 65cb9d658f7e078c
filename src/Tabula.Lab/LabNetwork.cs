using System.Globalization;
using System.Net;
using Microsoft.Win32.SafeHandles;
using Tabula.Linux;

namespace Tabula.Lab;

/// <summary>
/// The lab's network namespace: a bridge <c>br0</c> with the servers' (management) address, and one tap per relay on it.
/// <see cref="LabInternet"/> adds the relays' public segment to br0 and the internet around it.
/// <code>
///   namespace NAME (no default route, nothing bridged to a host NIC)
///     br0 10.198.0.1/24 ── provisioning https://10.198.0.1:8443, fleet https://10.198.0.1:9443
///      ├─ tap0 ── QEMU relay-1 (static 198.51.100.11 via 198.51.100.1, 52:54:00:7a:b1:01)
///      ├─ tap1 ── QEMU relay-2 (static 198.51.100.12)
///   host: 127.0.0.1:PORT ── `tabula lab forward` ── socket opened inside NAME ── 10.198.0.1:9443 (dashboard, staff API)
/// </code>
/// Packets reach only what the lab started in its namespaces: there is no route out, and the host reaches them only
/// through the forwarder's loopback port.
/// </summary>
public static class LabNetwork
{
    /// <summary>The bridge's (and the servers') address: the management network. It must lie outside the tunnel pool
    /// 10.64.0.0/10 (10.98.0.1 did, and a relay reaching it through its gateway routed it into wg0).</summary>
    public static readonly IPAddress HostAddress = IPAddress.Parse("10.198.0.1");

    /// <summary>The bridge's name inside the namespace.</summary>
    public const string Bridge = "br0";

    /// <summary>The MAC address of relay <paramref name="index"/>'s NIC.</summary>
    public static string RelayMac(int index) => $"52:54:00:7a:b1:{index + 1:x2}";

    /// <summary>The tap device of relay <paramref name="index"/> inside the namespace.</summary>
    public static string Tap(int index) => "tap" + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>True when /run/netns/<paramref name="name"/> exists.</summary>
    public static bool Exists(string name) => File.Exists($"/run/netns/{name}");

    /// <summary>Creates the namespace with loopback, the bridge and <paramref name="relays"/> taps, all up.</summary>
    public static void Create(string name, int relays)
    {
        HostProcess.Run(["ip", "netns", "add", name]);
        Ip(name, "link", "set", "lo", "up");
        Ip(name, "link", "add", Bridge, "type", "bridge");
        Ip(name, "addr", "add", HostAddress + "/24", "dev", Bridge);
        Ip(name, "link", "set", Bridge, "up");
        for (int i = 0; i < relays; i++)
        {
            Ip(name, "tuntap", "add", "dev", Tap(i), "mode", "tap");
            Ip(name, "link", "set", Tap(i), "master", Bridge);
            Ip(name, "link", "set", Tap(i), "up");
        }
    }

    /// <summary>Deletes the namespace (its bridge, taps and WireGuard interfaces go with it). False when there was none.</summary>
    public static bool Delete(string name)
    {
        if (!Exists(name))
            return false;
        HostProcess.TryRun(["ip", "netns", "del", name]);
        return true;
    }

    /// <summary>Runs <c>ip -n NAME ARGS</c>.</summary>
    public static string Ip(string name, params string[] arguments) => HostProcess.Run(["ip", "-n", name, .. arguments]);

    /// <summary>A command line that runs <paramref name="command"/> inside the namespace (ip netns exec, which execs).</summary>
    public static string[] Exec(string name, IEnumerable<string> command) => ["ip", "netns", "exec", name, .. command];

    /// <summary>
    /// Runs <paramref name="action"/> on a new thread that has entered the namespace with setns(2) and returns its result.
    /// A socket belongs to the namespace of the thread that creates it, and stays there after the thread ends.
    /// </summary>
    public static T RunInside<T>(string name, Func<T> action) =>
        Namespaces.RunInside($"/run/netns/{name}", NamespaceKind.Network, action);

    /// <summary>True when a TCP connection to <paramref name="endpoint"/> from inside the namespace succeeds.</summary>
    public static bool CanConnect(string name, IPEndPoint endpoint) => RunInside(name, () =>
    {
        using var probe = new System.Net.Sockets.Socket(endpoint.AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        try { probe.Connect(endpoint); return true; }
        catch (System.Net.Sockets.SocketException) { return false; }
    });
}

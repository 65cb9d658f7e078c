using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Tabula.Lab;

/// <summary>What the echo host saw when the lab's client fetched /ip through a relay: the address, or why none.</summary>
/// <param name="Ipv4">The address over IPv4 (the relay's public IPv4 when it NATs), or null.</param>
/// <param name="Ipv6">The address over IPv6, or null.</param>
/// <param name="Detail">A line for the progress output, e.g. "no egress (IPv4: timed out after 8s)".</param>
public sealed record EchoSeen(string? Ipv4, string? Ipv6, string Detail);

/// <summary>
/// The lab's own customer client: wireguard-go interfaces (one per relay, same device key and addresses) in customer
/// namespace 1, as a customer's machine on the lab internet. Each interface is used only by sockets bound to it
/// (ping -I, SO_BINDTODEVICE): a policy rule per interface (<c>oif IFACE lookup 100+i</c>) sends those through the
/// tunnel, and the namespace's own routes stay as they were, so tests may add their own clients beside it.
/// </summary>
internal static class LabClient
{
    /// <summary>The namespace the lab's client runs in.</summary>
    public static string Namespace(string labNamespace) => LabInternet.CustomerNamespace(labNamespace, 1);

    /// <summary>The WireGuard endpoint of relay <paramref name="index"/> on the lab internet.</summary>
    public static string Endpoint(int index) => $"{LabInternet.RelayPublic4(index)}:{LabRunner.WireguardPort}";

    /// <summary>Configures a running wireguard-go interface: key, the relay as peer (all addresses allowed: the tunnel
    /// carries the internet for bound sockets), the device's addresses, the policy routing.</summary>
    public static void Configure(string ns, string iface, int index, string keyFile, string relayKey, string deviceIpv4, string deviceIpv6)
    {
        HostProcess.Run(LabNetwork.Exec(ns, ["wg", "set", iface, "private-key", keyFile, "peer", relayKey, "endpoint", Endpoint(index),
            "allowed-ips", "0.0.0.0/0,::/0"]));
        LabNetwork.Ip(ns, "addr", "add", deviceIpv4 + "/32", "dev", iface);
        LabNetwork.Ip(ns, "-6", "addr", "add", deviceIpv6 + "/128", "dev", iface, "nodad");
        LabNetwork.Ip(ns, "link", "set", iface, "up");
        string table = (100 + index).ToString(CultureInfo.InvariantCulture);
        foreach (string family in new[] { "-4", "-6" })
        {
            LabNetwork.Ip(ns, family, "route", "add", "default", "dev", iface, "table", table);
            LabNetwork.Ip(ns, family, "rule", "add", "oif", iface, "lookup", table, "pref", table);
        }
    }

    /// <summary>Points <paramref name="iface"/> at the relay's current key only (what a client app does when the relay
    /// list changes).</summary>
    public static void Repoint(string ns, string iface, int index, string relayKey)
    {
        foreach (string peer in HostProcess.Run(LabNetwork.Exec(ns, ["wg", "show", iface, "peers"])).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            if (peer.Trim() != relayKey)
                HostProcess.Run(LabNetwork.Exec(ns, ["wg", "set", iface, "peer", peer.Trim(), "remove"]));
        HostProcess.Run(LabNetwork.Exec(ns, ["wg", "set", iface, "peer", relayKey, "endpoint", Endpoint(index), "allowed-ips", "0.0.0.0/0,::/0"]));
    }

    /// <summary>One ping to the tunnel gateway through <paramref name="iface"/>.</summary>
    public static bool PingOnce(string ns, string iface) =>
        HostProcess.TryRun(LabNetwork.Exec(ns, ["ping", "-c", "1", "-W", "2", "-I", iface, LabRunner.TunnelGateway])).Stdout
            .Contains("1 received", StringComparison.Ordinal);

    /// <summary>Pings the tunnel gateway through <paramref name="iface"/> (up to 20 tries of 2 s) and checks that wg shows
    /// a handshake with <paramref name="relayKey"/>.</summary>
    public static (bool Handshake, bool Ping) PingThrough(string ns, string iface, string relayKey)
    {
        bool ping = false;
        for (int attempt = 0; attempt < 20 && !ping; attempt++)
            ping = PingOnce(ns, iface);
        string handshakes = HostProcess.Run(LabNetwork.Exec(ns, ["wg", "show", iface, "latest-handshakes"]));
        bool handshake = Regex.IsMatch(handshakes, Regex.Escape(relayKey) + @"\s+[1-9][0-9]*");
        return (handshake, ping);
    }

    /// <summary>
    /// GET http://ECHO/ip over both families through <paramref name="iface"/>: what the echo host saw (the relay's
    /// public addresses once the relay forwards and NATs). A relay without egress gives a clear "no egress" instead of
    /// a failure; each fetch is bounded by <paramref name="timeout"/>.
    /// </summary>
    public static async Task<EchoSeen> EchoSeenAsync(string ns, string iface, TimeSpan timeout, CancellationToken ct)
    {
        var (v4, why4) = await FetchIpAsync(ns, iface, LabInternet.Echo4, timeout, ct);
        var (v6, why6) = await FetchIpAsync(ns, iface, LabInternet.Echo6, timeout, ct);
        string detail = v4 is null && v6 is null
            ? $"no egress (IPv4: {why4}; IPv6: {why6})"
            : $"the echo host saw {v4 ?? "nothing over IPv4 (" + why4 + ")"} and {v6 ?? "nothing over IPv6 (" + why6 + ")"}";
        return new EchoSeen(v4, v6, detail);
    }

    static async Task<(string? Seen, string Why)> FetchIpAsync(string ns, string iface, IPAddress echo, TimeSpan timeout, CancellationToken ct)
    {
        using var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            ConnectCallback = async (context, token) =>
            {
                var socket = LabNetwork.RunInside(ns, () => new Socket(echo.AddressFamily, SocketType.Stream, ProtocolType.Tcp));
                try
                {
                    socket.SetRawSocketOption(1 /* SOL_SOCKET */, 25 /* SO_BINDTODEVICE */, Encoding.ASCII.GetBytes(iface + "\0"));
                    await socket.ConnectAsync(new IPEndPoint(echo, context.DnsEndPoint.Port), token);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        using var client = new HttpClient(handler) { Timeout = timeout };
        string host = echo.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{echo}]" : echo.ToString();
        try
        {
            using var response = await client.GetAsync($"http://{host}:{LabInternet.EchoHttpPort}/ip", ct);
            string body = (await response.Content.ReadAsStringAsync(ct)).Trim();
            return response.IsSuccessStatusCode && IPAddress.TryParse(body, out _) ? (body, "") : (null, $"HTTP {(int)response.StatusCode}");
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            return (null, $"timed out after {timeout.TotalSeconds:0}s");
        }
        catch (HttpRequestException e)
        {
            return (null, e.InnerException?.Message ?? e.Message);
        }
    }
}

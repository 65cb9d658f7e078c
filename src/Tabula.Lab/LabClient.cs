using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
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

    /// <summary>
    /// The real <c>tabula relay attest</c> (issue 19) in customer namespace <paramref name="ns"/>, asking the relay through
    /// <paramref name="iface"/> (<c>--interface</c>: every lab tunnel reaches its relay's gateway at 10.64.0.1) with the relay's
    /// WireGuard key as the customer's configuration has it, the lab's signing root and threshold, and the lab's TPM manufacturer
    /// CA. The descriptor is fetched as routed (the provisioning URL in the relay's measured host configuration, over the lab
    /// internet). Returns the verdict and how long the whole run took (bounded: 90 s).
    /// </summary>
    public static RelayAttestation Attest(IReadOnlyList<string> tabula, string ns, string iface, string relayKey, string signingRoot, string tpmRoots)
    {
        string[] command = ["relay", "attest", "--gateway", LabRunner.TunnelGateway, "--relay-key", relayKey, "--signing-root", signingRoot,
            "--tpm-roots", tpmRoots, "--threshold", LabSigning.Threshold.ToString(CultureInfo.InvariantCulture), "--interface", iface, "--json"];
        string typed = $"ip netns exec {ns} tabula {string.Join(' ', command.Select(LabRunner.Quote))}";
        var clock = Stopwatch.StartNew();
        var (code, stdout, stderr) = HostProcess.TryRun(LabNetwork.Exec(ns, [.. tabula, .. command]), timeout: TimeSpan.FromSeconds(90));
        double seconds = Math.Round(clock.Elapsed.TotalSeconds, 2);
        AttestJson? json = null;
        if (code is 0 or 1)
            try { json = JsonSerializer.Deserialize(stdout, LabAttestJson.Default.AttestJson); }
            catch (JsonException) { }
        if (json is null)
        {
            string why = (stderr.Trim().Length > 0 ? stderr : stdout).Trim();
            return new RelayAttestation(false, "unreachable", null, null, seconds)
            {
                Detail = $"exit {code}: {(why.Length > 300 ? why[..300] + "…" : why)}", Command = typed,
            };
        }
        var failed = json.Verified ? null : json.Steps?.FirstOrDefault(step => !step.Ok);
        return new RelayAttestation(json.Verified, json.Verified ? null : failed?.Name ?? "incomplete", json.PackageSha256, json.Release, seconds)
        {
            Detail = failed?.Detail, Pcrs = json.Pcrs, Command = typed,
        };
    }

    /// <summary>One line for the progress output about <paramref name="attestation"/>.</summary>
    public static string Describe(RelayAttestation attestation) => attestation.Verified
        ? $"verified: package {attestation.PackageSha256?[..16]}…, release {attestation.Release?.ToString(CultureInfo.InvariantCulture) ?? "?"}, " +
          $"pcr12 {attestation.Pcrs?.GetValueOrDefault("12")?[..16]}… ({attestation.Seconds:0.00}s end to end)"
        : $"NOT verified: failed at {attestation.FailedStep}: {attestation.Detail} ({attestation.Seconds:0.00}s)";
}

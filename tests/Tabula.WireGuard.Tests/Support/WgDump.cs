namespace Tabula.WireGuard.Tests.Support;

/// <summary>
/// Parsed output of <c>wg show IFACE dump</c> (wireguard-tools show.c dump_print): one tab-separated device line
/// (private key, public key, listen port, fwmark) and one line per peer (public key, preshared key, endpoint,
/// allowed IPs, latest handshake, rx, tx, persistent keepalive). Keys are base64, "(none)" and "off" mark absence.
/// </summary>
public sealed record WgDump(string PrivateKey, string PublicKey, string ListenPort, string FirewallMark, IReadOnlyList<WgDumpPeer> Peers)
{
    public static WgDump Parse(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var device = lines[0].Split('\t');
        var peers = lines.Skip(1).Select(l => l.Split('\t')).Select(f => new WgDumpPeer(
            f[0], f[1], f[2], f[3] == "(none)" ? [] : f[3].Split(','), long.Parse(f[4]), ulong.Parse(f[5]), ulong.Parse(f[6]), f[7])).ToArray();
        return new WgDump(device[0], device[1], device[2], device[3], peers);
    }

    public static WgDump Read(NetworkNamespace ns, string interfaceName) =>
        Parse(ns.Exec("wg", "show", interfaceName, "dump"));
}

public sealed record WgDumpPeer(string PublicKey, string PresharedKey, string Endpoint, string[] AllowedIps,
    long LatestHandshake, ulong ReceiveBytes, ulong TransmitBytes, string PersistentKeepalive);

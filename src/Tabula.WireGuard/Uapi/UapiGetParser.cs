using System.Globalization;
using System.Net;
using System.Numerics;
using System.Text;
using Tabula.WireGuard.Keys;

namespace Tabula.WireGuard.Uapi;

/// <summary>
/// Turns the lines of a <c>get=1</c> reply into a <see cref="DeviceState"/> (xplatform page; wireguard-go
/// <c>IpcGetOperation</c>). Device keys come first; <c>public_key</c> opens a peer section; <c>errno</c> comes last;
/// an empty line ends the reply. Unknown keys are ignored, as <c>wg</c> does, so newer daemons stay readable.
/// Values are parsed strictly (digits only, exact key lengths). On failure the keys read so far are zeroed.
/// </summary>
internal sealed class UapiGetParser : IDisposable
{
    readonly List<PeerState> peers = [];
    WireGuardKey? privateKey;
    ushort listenPort;
    uint firewallMark;
    PeerBuilder? peer;
    int allowedIps;
    int? errno;
    long lineNumber;

    static readonly long MaxHandshakeSeconds = DateTimeOffset.MaxValue.ToUnixTimeSeconds();

    /// <summary>The errno line's value, once seen.</summary>
    public int? Errno => errno;

    /// <summary>Consumes one line; false when it was the closing empty line.</summary>
    public bool Accept(ReadOnlySpan<byte> line)
    {
        lineNumber++;
        if (line.IsEmpty)
        {
            FinishPeer();
            return false;
        }
        if (line.Length > Limits.UapiMaxLineBytes)
            WireGuardProtocolException.Throw(ProtocolError.LineTooLong, $"line {lineNumber}");
        Span<char> chars = stackalloc char[line.Length];
        if (Ascii.ToUtf16(line, chars, out _) != System.Buffers.OperationStatus.Done)
            WireGuardProtocolException.Throw(ProtocolError.MalformedLine, $"line {lineNumber}");
        int equals = chars.IndexOf('=');
        if (equals <= 0)
            WireGuardProtocolException.Throw(ProtocolError.MalformedLine, $"line {lineNumber}");
        ReadOnlySpan<char> key = chars[..equals];
        ReadOnlySpan<char> value = chars[(equals + 1)..];
        if (errno is not null)
            WireGuardProtocolException.Throw(ProtocolError.MalformedLine, $"line {lineNumber} after errno");

        switch (key)
        {
            case "errno":
                errno = ParseNumber<int>(key, value, NumberStyles.AllowLeadingSign);
                break;
            case "public_key":
                FinishPeer();
                if (peers.Count >= Limits.MaxPeers)
                    WireGuardProtocolException.Throw(ProtocolError.TooManyPeers);
                peer = new PeerBuilder { PublicKey = ParseKey(key, value) };
                break;
            case "private_key" when peer is null:
                privateKey?.Dispose();
                privateKey = ParseKey(key, value);
                break;
            case "listen_port" when peer is null:
                listenPort = ParseNumber<ushort>(key, value);
                break;
            case "fwmark" when peer is null:
                firewallMark = ParseNumber<uint>(key, value);
                break;
            case "preshared_key":
                var psk = ParseKey(key, value);
                CurrentPeer(key).PresharedKey?.Dispose();
                if (psk.IsZero)
                    psk.Dispose();
                else
                    CurrentPeer(key).PresharedKey = psk;
                break;
            case "endpoint":
                if (!IPEndPoint.TryParse(value, out var endpoint) || endpoint.Port == 0 || value.IndexOf(':') < 0)
                    WireGuardProtocolException.Throw(ProtocolError.InvalidValue, "endpoint");
                CurrentPeer(key).Endpoint = endpoint;
                break;
            case "last_handshake_time_sec":
                long seconds = ParseNumber<long>(key, value);
                // DateTimeOffset ends in 9999 (found by fuzzing: a larger value threw ArgumentOutOfRangeException).
                if (seconds > MaxHandshakeSeconds)
                    WireGuardProtocolException.Throw(ProtocolError.InvalidValue, "last_handshake_time_sec");
                CurrentPeer(key).HandshakeSeconds = seconds;
                break;
            case "last_handshake_time_nsec":
                long nsec = ParseNumber<long>(key, value);
                if (nsec >= 1_000_000_000)
                    WireGuardProtocolException.Throw(ProtocolError.InvalidValue, "last_handshake_time_nsec");
                CurrentPeer(key).HandshakeNanoseconds = nsec;
                break;
            case "tx_bytes":
                CurrentPeer(key).TransmitBytes = ParseNumber<ulong>(key, value);
                break;
            case "rx_bytes":
                CurrentPeer(key).ReceiveBytes = ParseNumber<ulong>(key, value);
                break;
            case "persistent_keepalive_interval":
                CurrentPeer(key).PersistentKeepaliveInterval = ParseNumber<ushort>(key, value);
                break;
            case "protocol_version":
                CurrentPeer(key).ProtocolVersion = ParseNumber<int>(key, value);
                break;
            case "allowed_ip":
                var current = CurrentPeer(key);
                if (++allowedIps > Limits.MaxAllowedIps)
                    WireGuardProtocolException.Throw(ProtocolError.TooManyAllowedIps);
                if (!AllowedIp.TryParse(value, out var ip) || value.IndexOf('/') < 0)
                    WireGuardProtocolException.Throw(ProtocolError.InvalidValue, "allowed_ip");
                current.AllowedIps.Add(ip.Value);
                break;
            default:
                break; // unknown or misplaced device key: ignored, like wg
        }
        return true;
    }

    /// <summary>The device, handing key ownership to the caller.</summary>
    public DeviceState ToDeviceState(string interfaceName)
    {
        FinishPeer();
        var state = new DeviceState
        {
            InterfaceName = interfaceName,
            PrivateKey = privateKey,
            PublicKey = privateKey?.DerivePublicKey(),
            ListenPort = listenPort,
            FirewallMark = firewallMark,
            Peers = peers.ToArray(),
        };
        privateKey = null;
        peers.Clear();
        return state;
    }

    /// <summary>Zeroes whatever keys were not handed over.</summary>
    public void Dispose()
    {
        privateKey?.Dispose();
        peer?.PublicKey.Dispose();
        peer?.PresharedKey?.Dispose();
        foreach (var p in peers)
            p.Dispose();
        peers.Clear();
    }

    PeerBuilder CurrentPeer(ReadOnlySpan<char> key)
    {
        if (peer is null)
            WireGuardProtocolException.Throw(ProtocolError.PeerKeyOutsidePeer, key.ToString());
        return peer;
    }

    void FinishPeer()
    {
        if (peer is null)
            return;
        peers.Add(peer.Build());
        peer = null;
    }

    static WireGuardKey ParseKey(ReadOnlySpan<char> key, ReadOnlySpan<char> value)
    {
        if (!WireGuardKey.TryParseHex(value, out var parsed))
            WireGuardProtocolException.Throw(ProtocolError.InvalidValue, key.ToString());
        return parsed;
    }

    static T ParseNumber<T>(ReadOnlySpan<char> key, ReadOnlySpan<char> value, NumberStyles styles = NumberStyles.None)
        where T : INumber<T>
    {
        if (value.IsEmpty || value.Length > 20 || !T.TryParse(value, styles, CultureInfo.InvariantCulture, out var result))
            throw new WireGuardProtocolException(ProtocolError.InvalidValue, key.ToString());
        return result;
    }

    sealed class PeerBuilder
    {
        public required WireGuardKey PublicKey;
        public WireGuardKey? PresharedKey;
        public IPEndPoint? Endpoint;
        public long HandshakeSeconds, HandshakeNanoseconds;
        public ulong TransmitBytes, ReceiveBytes;
        public ushort PersistentKeepaliveInterval;
        public int ProtocolVersion;
        public readonly List<AllowedIp> AllowedIps = [];

        public PeerState Build() => new()
        {
            PublicKey = PublicKey,
            PresharedKey = PresharedKey,
            Endpoint = Endpoint,
            LastHandshake = HandshakeSeconds == 0 && HandshakeNanoseconds == 0
                ? null
                : DateTimeOffset.FromUnixTimeSeconds(HandshakeSeconds).AddTicks(HandshakeNanoseconds / 100),
            TransmitBytes = TransmitBytes,
            ReceiveBytes = ReceiveBytes,
            PersistentKeepaliveInterval = PersistentKeepaliveInterval,
            ProtocolVersion = ProtocolVersion,
            AllowedIps = AllowedIps.ToArray(),
        };
    }
}

using System.Buffers.Binary;
using System.Net;
using Tabula.Linux;
using Tabula.Linux.Netlink;
using Tabula.Linux.Netlink.Generic;
using Tabula.WireGuard.Keys;

namespace Tabula.WireGuard.Kernel;

/// <summary>
/// Accumulates the NLM_F_MULTI replies of a WG_CMD_GET_DEVICE dump into a <see cref="DeviceState"/>. Peers split
/// across messages (same public key at the end of one message and the start of the next) are coalesced, as the
/// header asks of receivers. On failure the keys read so far are zeroed.
/// </summary>
internal sealed class KernelGetDecoder : IDisposable
{
    readonly List<PeerBuilder> peers = [];
    WireGuardKey? privateKey, publicKey;
    string? interfaceName;
    ushort listenPort;
    uint firewallMark;
    int allowedIps;

    /// <summary>
    /// Consumes one reply message (payload after the netlink header). Malformed bytes throw
    /// <see cref="WireGuardProtocolException"/>, with Tabula.Linux's <see cref="KernelDataException"/> as the cause
    /// when the attribute framing itself was wrong.
    /// </summary>
    public void Accept(ReadOnlySpan<byte> payload)
    {
        try
        {
            AcceptDevice(payload);
        }
        catch (KernelDataException e)
        {
            throw new WireGuardProtocolException(
                e.Reason == KernelDataError.NetlinkAttributeSize ? ProtocolError.AttributeSize : ProtocolError.MalformedMessage, e.Message, e);
        }
    }

    void AcceptDevice(ReadOnlySpan<byte> payload)
    {
        var attributes = new AttributeReader(GenericNetlink.Attributes(payload));
        while (attributes.TryRead(out ushort type, out var value))
        {
            switch (type)
            {
                case WgNetlink.DeviceIfName:
                    interfaceName = AttributeReader.ReadString(value, Limits.MaxInterfaceNameLength);
                    break;
                case WgNetlink.DevicePrivateKey:
                    privateKey?.Dispose();
                    privateKey = ReadKey(value, "WGDEVICE_A_PRIVATE_KEY");
                    break;
                case WgNetlink.DevicePublicKey:
                    publicKey?.Dispose();
                    publicKey = ReadKey(value, "WGDEVICE_A_PUBLIC_KEY");
                    break;
                case WgNetlink.DeviceListenPort:
                    listenPort = AttributeReader.ReadUInt16(value);
                    break;
                case WgNetlink.DeviceFwmark:
                    firewallMark = AttributeReader.ReadUInt32(value);
                    break;
                case WgNetlink.DevicePeers:
                    var list = new AttributeReader(value);
                    while (list.TryRead(out _, out var peer))
                        AcceptPeer(peer);
                    break;
            }
        }
    }

    void AcceptPeer(ReadOnlySpan<byte> data)
    {
        // The public key is needed first to know whether this continues the previous peer; the kernel puts it first,
        // but find it wherever it is.
        var scan = new AttributeReader(data);
        WireGuardKey? key = null;
        while (scan.TryRead(out ushort type, out var value))
            if (type == WgNetlink.PeerPublicKey)
            {
                key?.Dispose();
                key = ReadKey(value, "WGPEER_A_PUBLIC_KEY");
            }
        if (key is null)
            WireGuardProtocolException.Throw(ProtocolError.MalformedMessage, "peer without WGPEER_A_PUBLIC_KEY");

        PeerBuilder peer;
        if (peers.Count > 0 && peers[^1].PublicKey.Equals(key))
        {
            key.Dispose();
            peer = peers[^1];
        }
        else
        {
            if (peers.Count >= Limits.MaxPeers)
            {
                key.Dispose();
                WireGuardProtocolException.Throw(ProtocolError.TooManyPeers);
            }
            peer = new PeerBuilder { PublicKey = key };
            peers.Add(peer);
        }

        var attributes = new AttributeReader(data);
        while (attributes.TryRead(out ushort type, out var value))
        {
            switch (type)
            {
                case WgNetlink.PeerPresharedKey:
                    var psk = ReadKey(value, "WGPEER_A_PRESHARED_KEY");
                    peer.PresharedKey?.Dispose();
                    peer.PresharedKey = null;
                    if (psk.IsZero)
                        psk.Dispose();
                    else
                        peer.PresharedKey = psk;
                    break;
                case WgNetlink.PeerEndpoint:
                    peer.Endpoint = ReadEndpoint(value);
                    break;
                case WgNetlink.PeerPersistentKeepalive:
                    peer.PersistentKeepaliveInterval = AttributeReader.ReadUInt16(value);
                    break;
                case WgNetlink.PeerLastHandshake:
                    var time = AttributeReader.Exact(value, 16);
                    long seconds = BinaryPrimitives.ReadInt64LittleEndian(time);
                    long nanoseconds = BinaryPrimitives.ReadInt64LittleEndian(time[8..]);
                    if (seconds < 0 || nanoseconds is < 0 or >= 1_000_000_000 || seconds > 253_402_300_799)
                        WireGuardProtocolException.Throw(ProtocolError.AttributeSize, "WGPEER_A_LAST_HANDSHAKE_TIME out of range");
                    peer.LastHandshake = seconds == 0 && nanoseconds == 0
                        ? null
                        : DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(nanoseconds / 100);
                    break;
                case WgNetlink.PeerRxBytes:
                    peer.ReceiveBytes = AttributeReader.ReadUInt64(value);
                    break;
                case WgNetlink.PeerTxBytes:
                    peer.TransmitBytes = AttributeReader.ReadUInt64(value);
                    break;
                case WgNetlink.PeerProtocolVersion:
                    peer.ProtocolVersion = (int)AttributeReader.ReadUInt32(value);
                    break;
                case WgNetlink.PeerAllowedIps:
                    var list = new AttributeReader(value);
                    while (list.TryRead(out _, out var entry))
                    {
                        if (++allowedIps > Limits.MaxAllowedIps)
                            WireGuardProtocolException.Throw(ProtocolError.TooManyAllowedIps);
                        peer.AllowedIps.Add(ReadAllowedIp(entry));
                    }
                    break;
            }
        }
    }

    static AllowedIp ReadAllowedIp(ReadOnlySpan<byte> data)
    {
        var attributes = new AttributeReader(data);
        ushort? family = null;
        ReadOnlySpan<byte> address = default;
        int? cidr = null;
        while (attributes.TryRead(out ushort type, out var value))
        {
            switch (type)
            {
                case WgNetlink.AllowedIpFamily: family = AttributeReader.ReadUInt16(value); break;
                case WgNetlink.AllowedIpAddress: address = value; break;
                case WgNetlink.AllowedIpCidr: cidr = AttributeReader.ReadByte(value); break;
            }
        }
        int size = family switch
        {
            WgNetlink.AfInet => 4,
            WgNetlink.AfInet6 => 16,
            _ => throw new WireGuardProtocolException(ProtocolError.MalformedMessage, "allowed IP family"),
        };
        AttributeReader.Exact(address, size);
        if (cidr is not { } prefix || prefix > size * 8)
            throw new WireGuardProtocolException(ProtocolError.MalformedMessage, "allowed IP prefix length");
        return new AllowedIp(new IPAddress(address), prefix);
    }

    static IPEndPoint? ReadEndpoint(ReadOnlySpan<byte> value)
    {
        if (value.Length < 2)
            WireGuardProtocolException.Throw(ProtocolError.AttributeSize, "WGPEER_A_ENDPOINT");
        ushort family = BinaryPrimitives.ReadUInt16LittleEndian(value);
        switch (family)
        {
            case WgNetlink.AfInet:
                AttributeReader.Exact(value, WgNetlink.SockaddrIn);
                return new IPEndPoint(new IPAddress(value.Slice(4, 4)), BinaryPrimitives.ReadUInt16BigEndian(value[2..]));
            case WgNetlink.AfInet6:
                AttributeReader.Exact(value, WgNetlink.SockaddrIn6);
                var address = new IPAddress(value.Slice(8, 16), BinaryPrimitives.ReadUInt32LittleEndian(value[24..]));
                return new IPEndPoint(address, BinaryPrimitives.ReadUInt16BigEndian(value[2..]));
            case 0:
                return null;  // AF_UNSPEC: no endpoint
            default:
                throw new WireGuardProtocolException(ProtocolError.MalformedMessage, "endpoint family");
        }
    }

    static WireGuardKey ReadKey(ReadOnlySpan<byte> value, string name)
    {
        if (value.Length != Limits.KeyLength)
            WireGuardProtocolException.Throw(ProtocolError.AttributeSize, $"{name}: {value.Length} bytes, expected {Limits.KeyLength}");
        return new(value);
    }

    /// <summary>The device, handing key ownership to the caller.</summary>
    public DeviceState ToDeviceState(string requestedName)
    {
        var state = new DeviceState
        {
            InterfaceName = interfaceName ?? requestedName,
            PrivateKey = privateKey,
            PublicKey = publicKey,
            ListenPort = listenPort,
            FirewallMark = firewallMark,
            Peers = peers.Select(p => p.Build()).ToArray(),
        };
        privateKey = publicKey = null;
        peers.Clear();
        return state;
    }

    public void Dispose()
    {
        privateKey?.Dispose();
        publicKey?.Dispose();
        foreach (var peer in peers)
        {
            peer.PublicKey.Dispose();
            peer.PresharedKey?.Dispose();
        }
        peers.Clear();
    }

    sealed class PeerBuilder
    {
        public required WireGuardKey PublicKey;
        public WireGuardKey? PresharedKey;
        public IPEndPoint? Endpoint;
        public DateTimeOffset? LastHandshake;
        public ulong TransmitBytes, ReceiveBytes;
        public ushort PersistentKeepaliveInterval;
        public int ProtocolVersion;
        public readonly List<AllowedIp> AllowedIps = [];

        public PeerState Build() => new()
        {
            PublicKey = PublicKey,
            PresharedKey = PresharedKey,
            Endpoint = Endpoint,
            LastHandshake = LastHandshake,
            TransmitBytes = TransmitBytes,
            ReceiveBytes = ReceiveBytes,
            PersistentKeepaliveInterval = PersistentKeepaliveInterval,
            ProtocolVersion = ProtocolVersion,
            AllowedIps = AllowedIps.ToArray(),
        };
    }
}

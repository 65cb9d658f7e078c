using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Tabula.Linux.Netlink;
using Tabula.Linux.Netlink.Generic;

namespace Tabula.WireGuard.Kernel;

/// <summary>
/// Splits a <see cref="DeviceUpdate"/> into WG_CMD_SET_DEVICE messages of at most the writer's capacity, following
/// the fragmentation rules in include/uapi/linux/wireguard.h (as wireguard-tools <c>ipc-linux.h</c> does):
/// <list type="bullet">
/// <item>device attributes and WGDEVICE_F_REPLACE_PEERS go in the first message only, or later messages would
/// erase the peers of earlier ones;</item>
/// <item>a peer whose allowed IPs do not fit continues in the next message with its public key and the remaining
/// allowed IPs; WGPEER_F_REPLACE_ALLOWEDIPS only in its first fragment;</item>
/// <item>unlike wireguard-tools, a continuation of an update-only peer repeats WGPEER_F_UPDATE_ONLY, so a peer
/// that did not exist is not created by its second fragment.</item>
/// </list>
/// The peer enumerator is advanced lazily, one message at a time.
/// </summary>
internal sealed class KernelSetEncoder(string interfaceName, DeviceUpdate update) : IDisposable
{
    // Largest peer header: nest (4) + public key (36) + flags (8) + preshared key (36) + sockaddr_in6 (32) + keepalive (8).
    const int PeerHeaderMaxBytes = 124;
    // Allowed IP entry: nest (4) + family (8) + address (8 or 20) + cidr (8).
    const int AllowedIpV4Bytes = 28, AllowedIpV6Bytes = 40;
    // What must fit to start a peer: peers nest + header + allowed IPs nest + one IPv6 entry.
    const int PeerStartBytes = 4 + PeerHeaderMaxBytes + 4 + AllowedIpV6Bytes;

    readonly IEnumerator<PeerUpdate> peers = update.Peers.GetEnumerator();
    PeerUpdate? current;
    int nextAllowedIp = -1;   // -1: the current peer's header has not been sent
    bool first = true, exhausted;

    /// <summary>Messages built so far.</summary>
    public int MessageCount { get; private set; }

    /// <summary>
    /// Builds the next message into <paramref name="writer"/> (reset first; the socket numbers it when sending);
    /// false when the update is complete.
    /// </summary>
    public bool TryWriteNext(NetlinkMessageBuilder writer, ushort family)
    {
        if (!first && current is null && !Advance())
            return false;

        writer.Reset(family, NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack);
        GenericNetlink.AppendHeader(writer, WgNetlink.SetDevice, WgNetlink.Version);
        writer.AddString(WgNetlink.DeviceIfName, interfaceName);
        if (first)
        {
            if (update.PrivateKey is { } key)
                writer.AddAttribute(WgNetlink.DevicePrivateKey, key.Bytes);
            if (update.ListenPort is { } port)
                writer.AddUInt16(WgNetlink.DeviceListenPort, port);
            if (update.FirewallMark is { } mark)
                writer.AddUInt32(WgNetlink.DeviceFwmark, mark);
            if (update.ReplacePeers)
                writer.AddUInt32(WgNetlink.DeviceFlags, WgNetlink.DeviceFlagReplacePeers);
        }

        int peersNest = -1;
        while (current is not null || Advance())
        {
            if (writer.Remaining < PeerStartBytes)
            {
                if (peersNest < 0)
                    throw new InvalidOperationException("netlink message capacity too small for one peer");
                break;
            }
            if (peersNest < 0)
                peersNest = writer.BeginNested(WgNetlink.DevicePeers);
            if (!WritePeer(writer, current!))
                break;   // allowed IPs continue in the next message
            current = null;
            nextAllowedIp = -1;
        }
        if (peersNest >= 0)
            writer.EndNested(peersNest);
        first = false;
        MessageCount++;
        return true;
    }

    bool Advance()
    {
        if (exhausted || !peers.MoveNext())
        {
            exhausted = true;
            return false;
        }
        current = peers.Current ?? throw new ArgumentNullException(nameof(update), "a peer update is null");
        current.Validate();
        nextAllowedIp = -1;
        return true;
    }

    // Writes the current peer's header (or continuation) and as many allowed IPs as fit; true when all are written.
    bool WritePeer(NetlinkMessageBuilder writer, PeerUpdate peer)
    {
        int peerNest = writer.BeginNested(0);
        writer.AddAttribute(WgNetlink.PeerPublicKey, peer.PublicKey.Bytes);
        if (nextAllowedIp < 0)
        {
            uint flags = (peer.Remove ? WgNetlink.PeerFlagRemove : 0)
                         | (peer.ReplaceAllowedIps ? WgNetlink.PeerFlagReplaceAllowedIps : 0)
                         | (peer.UpdateOnly ? WgNetlink.PeerFlagUpdateOnly : 0);
            if (flags != 0)
                writer.AddUInt32(WgNetlink.PeerFlags, flags);
            if (peer.PresharedKey is { } psk)
                writer.AddAttribute(WgNetlink.PeerPresharedKey, psk.Bytes);
            if (peer.Endpoint is { } endpoint)
                WriteEndpoint(writer, endpoint);
            if (peer.PersistentKeepaliveInterval is { } keepalive)
                writer.AddUInt16(WgNetlink.PeerPersistentKeepalive, keepalive);
            nextAllowedIp = 0;
        }
        else if (peer.UpdateOnly)
        {
            writer.AddUInt32(WgNetlink.PeerFlags, WgNetlink.PeerFlagUpdateOnly);
        }

        var ips = peer.AllowedIps;
        if (nextAllowedIp < ips.Count)
        {
            int ipsNest = writer.BeginNested(WgNetlink.PeerAllowedIps);
            Span<byte> address = stackalloc byte[16];
            for (; nextAllowedIp < ips.Count; nextAllowedIp++)
            {
                var ip = ips[nextAllowedIp];
                if (writer.Remaining < (ip.IsIPv6 ? AllowedIpV6Bytes : AllowedIpV4Bytes))
                    break;
                int ipNest = writer.BeginNested(0);
                writer.AddUInt16(WgNetlink.AllowedIpFamily, ip.IsIPv6 ? WgNetlink.AfInet6 : WgNetlink.AfInet);
                ip.Address.TryWriteBytes(address, out int written);
                writer.AddAttribute(WgNetlink.AllowedIpAddress, address[..written]);
                writer.AddByte(WgNetlink.AllowedIpCidr, ip.Cidr);
                writer.EndNested(ipNest);
            }
            writer.EndNested(ipsNest);
        }
        writer.EndNested(peerNest);
        return nextAllowedIp >= ips.Count;
    }

    /// <summary>struct sockaddr_in / sockaddr_in6 with the port in network byte order.</summary>
    internal static void WriteEndpoint(NetlinkMessageBuilder writer, IPEndPoint endpoint)
    {
        bool v6 = endpoint.AddressFamily == AddressFamily.InterNetworkV6;
        Span<byte> sockaddr = stackalloc byte[v6 ? WgNetlink.SockaddrIn6 : WgNetlink.SockaddrIn];
        sockaddr.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(sockaddr, v6 ? WgNetlink.AfInet6 : WgNetlink.AfInet);
        BinaryPrimitives.WriteUInt16BigEndian(sockaddr[2..], (ushort)endpoint.Port);
        if (v6)
        {
            endpoint.Address.TryWriteBytes(sockaddr.Slice(8, 16), out _);
            BinaryPrimitives.WriteUInt32LittleEndian(sockaddr[24..], (uint)endpoint.Address.ScopeId);
        }
        else
        {
            endpoint.Address.TryWriteBytes(sockaddr.Slice(4, 4), out _);
        }
        writer.AddAttribute(WgNetlink.PeerEndpoint, sockaddr);
    }

    public void Dispose() => peers.Dispose();
}

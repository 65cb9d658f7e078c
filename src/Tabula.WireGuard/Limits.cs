namespace Tabula.WireGuard;

/// <summary>
/// Every bound this library applies, with its source. Replies from a WireGuard implementation are trusted to be
/// well-formed only up to these bounds, so a confused or hostile daemon cannot make the relay agent allocate
/// without limit.
/// </summary>
public static class Limits
{
    /// <summary>Curve25519 keys and preshared keys: 32 bytes (include/uapi/linux/wireguard.h WG_KEY_LEN).</summary>
    public const int KeyLength = 32;

    /// <summary>IFNAMSIZ - 1 (include/uapi/linux/if.h): the longest interface name.</summary>
    public const int MaxInterfaceNameLength = 15;

    /// <summary>
    /// Peers we accept in one device read-back: the kernel's own maximum, MAX_PEERS_PER_DEVICE = 2^20
    /// (drivers/net/wireguard/peer.h). wireguard-go stops at 2^16 (device/constants.go MaxPeers).
    /// </summary>
    public const int MaxPeers = 1 << 20;

    /// <summary>
    /// Allowed IPs in one device read-back, summed over all peers. Arbitrary: 4 per peer at the kernel's peer limit.
    /// </summary>
    public const int MaxAllowedIps = 4 << 20;

    /// <summary>
    /// Longest UAPI reply line. The longest legitimate line is an IPv6 endpoint with a zone,
    /// <c>endpoint=[…%zone]:65535</c>, well under 128 bytes; arbitrary margin.
    /// </summary>
    public const int UapiMaxLineBytes = 1024;

    /// <summary>
    /// Bytes of UAPI request text buffered before a write to the socket. Bounds the client's memory however many
    /// peers an update streams; 64 KiB matches the default unix-socket buffer order of magnitude.
    /// </summary>
    public const int UapiWriteBufferBytes = 64 * 1024;

    /// <summary>Bytes read from the UAPI socket per read call.</summary>
    public const int UapiReadBufferBytes = 16 * 1024;

    /// <summary>
    /// Largest WG_CMD_SET_DEVICE message we build; peers beyond it go in the next message (the header documents
    /// this fragmentation). The kernel refuses a message over its socket send buffer (netlink_sendmsg: len &gt;
    /// sk_sndbuf - 32, EMSGSIZE; sndbuf defaults to ~208 KiB); wireguard-tools uses 4 KiB
    /// (MNL_SOCKET_BUFFER_SIZE). 32 KiB keeps the RTNL lock hold per message short and fits about 450 peers with one IPv4 allowed IP.
    /// </summary>
    public const int NetlinkSetMessageBytes = 32 * 1024;

    /// <summary>
    /// Receive buffer for netlink replies. Kernel dumps use at most 32 KiB per message (netlink_dump's
    /// max_recvmsg_len cap); we read with MSG_TRUNC and refuse anything larger.
    /// </summary>
    public const int NetlinkReceiveBufferBytes = 64 * 1024;
}

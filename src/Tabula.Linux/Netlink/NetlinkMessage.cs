namespace Tabula.Linux.Netlink;

/// <summary>One netlink message inside a received datagram; <see cref="Payload"/> borrows the receive buffer.</summary>
public readonly ref struct NetlinkMessage(ushort type, NetlinkMessageFlags flags, uint sequence, uint portId, ReadOnlySpan<byte> payload)
{
    /// <summary>nlmsg_type.</summary>
    public ushort Type { get; } = type;
    /// <summary>nlmsg_flags.</summary>
    public NetlinkMessageFlags Flags { get; } = flags;
    /// <summary>nlmsg_seq.</summary>
    public uint Sequence { get; } = sequence;
    /// <summary>nlmsg_pid: 0 for messages from the kernel.</summary>
    public uint PortId { get; } = portId;
    /// <summary>Everything after the 16-byte header, within nlmsg_len.</summary>
    public ReadOnlySpan<byte> Payload { get; } = payload;
}

/// <summary>Receives each message of a dump; the message is valid only during the call.</summary>
public delegate void NetlinkMessageHandler(NetlinkMessage message);

namespace Tabula.Linux.Netlink;

/// <summary>Sizes and message types shared by every netlink family (include/uapi/linux/netlink.h).</summary>
public static class NetlinkHeader
{
    /// <summary>sizeof(struct nlmsghdr).</summary>
    public const int Size = 16;
    /// <summary>sizeof(struct nlattr).</summary>
    public const int AttributeHeaderSize = 4;
    /// <summary>NLMSG_NOOP.</summary>
    public const ushort Noop = 1;
    /// <summary>NLMSG_ERROR: an acknowledgement (error 0) or a failure (negative errno).</summary>
    public const ushort Error = 2;
    /// <summary>NLMSG_DONE: ends a multipart reply.</summary>
    public const ushort Done = 3;
    /// <summary>NLMSG_OVERRUN: data lost.</summary>
    public const ushort Overrun = 4;
    /// <summary>NLM_F_CAPPED on an NLMSG_ERROR: the echoed request was cut to its header (NETLINK_CAP_ACK).</summary>
    public const ushort ErrorCapped = 0x100;
    /// <summary>NLM_F_ACK_TLVS on an NLMSG_ERROR: extended-ack attributes follow (NETLINK_EXT_ACK).</summary>
    public const ushort ErrorAckTlvs = 0x200;
    /// <summary>NLMSGERR_ATTR_MSG: the kernel's error text in an extended ack.</summary>
    public const ushort ErrorAttributeMessage = 1;
    /// <summary>NLA_F_NESTED.</summary>
    public const ushort NestedFlag = 0x8000;
    /// <summary>Mask that strips NLA_F_NESTED and NLA_F_NET_BYTEORDER from an attribute type.</summary>
    public const ushort AttributeTypeMask = 0x3FFF;

    /// <summary>NLMSG_ALIGN / NLA_ALIGN: round up to 4 bytes.</summary>
    public static int Align(int length) => (length + 3) & ~3;
}

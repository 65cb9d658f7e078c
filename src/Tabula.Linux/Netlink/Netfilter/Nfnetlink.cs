using System.Buffers.Binary;

namespace Tabula.Linux.Netlink.Netfilter;

/// <summary>nfnetlink framing (include/uapi/linux/netfilter/nfnetlink.h): subsystems, batches, struct nfgenmsg.</summary>
internal static class Nfnetlink
{
    internal const byte SubsystemConntrack = 1;   // NFNL_SUBSYS_CTNETLINK
    internal const byte SubsystemNfTables = 10;   // NFNL_SUBSYS_NFTABLES
    internal const ushort BatchBegin = 16;        // NFNL_MSG_BATCH_BEGIN = NLMSG_MIN_TYPE
    internal const ushort BatchEnd = 17;          // NFNL_MSG_BATCH_END
    internal const int GenericHeaderSize = 4;     // struct nfgenmsg { u8 family; u8 version; __be16 res_id; }
    internal const NetlinkMessageFlags Append = (NetlinkMessageFlags)0x800; // NLM_F_APPEND

    /// <summary>nlmsg_type for <paramref name="message"/> of <paramref name="subsystem"/>: subsys &lt;&lt; 8 | msg.</summary>
    internal static ushort Type(byte subsystem, byte message) => (ushort)(subsystem << 8 | message);

    /// <summary>Starts a message with its nfgenmsg (version 0).</summary>
    internal static NetlinkMessageBuilder Start(ushort type, NetlinkMessageFlags flags, byte family, ushort resourceId = 0)
    {
        var builder = new NetlinkMessageBuilder(type, flags | NetlinkMessageFlags.Request);
        Span<byte> header = builder.AppendFamilyHeader(GenericHeaderSize);
        header[0] = family;
        BinaryPrimitives.WriteUInt16BigEndian(header[2..], resourceId);
        return builder;
    }

    /// <summary>nf_tables and ctnetlink carry integers in network byte order (NLA_BE32/NLA_BE64).</summary>
    internal static void AddBigEndian(this NetlinkMessageBuilder builder, ushort type, uint value)
    {
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(payload, value);
        builder.AddAttribute(type, payload);
    }

    internal static void AddBigEndian(this NetlinkMessageBuilder builder, ushort type, ulong value)
    {
        Span<byte> payload = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(payload, value);
        builder.AddAttribute(type, payload);
    }

    internal static uint ReadBigEndianUInt32(ReadOnlySpan<byte> payload)
    {
        if (payload.Length != 4)
            KernelDataException.Throw(KernelDataError.NetlinkAttributeSize, $"{payload.Length} bytes where 4 are required");
        return BinaryPrimitives.ReadUInt32BigEndian(payload);
    }

    internal static ulong ReadBigEndianUInt64(ReadOnlySpan<byte> payload)
    {
        if (payload.Length != 8)
            KernelDataException.Throw(KernelDataError.NetlinkAttributeSize, $"{payload.Length} bytes where 8 are required");
        return BinaryPrimitives.ReadUInt64BigEndian(payload);
    }

    /// <summary>A name attribute: NUL-terminated, at most <see cref="NetfilterLimits.MaxNameBytes"/> bytes.</summary>
    internal static string ReadName(ReadOnlySpan<byte> payload)
    {
        if (payload.Length > NetfilterLimits.MaxNameBytes)
            KernelDataException.Throw(KernelDataError.NetlinkAttributeSize, $"name of {payload.Length} bytes, at most {NetfilterLimits.MaxNameBytes}");
        return AttributeReader.ReadString(payload);
    }

    /// <summary>Skips the nfgenmsg of a reply and returns its family and the attributes after it.</summary>
    internal static ReadOnlySpan<byte> Attributes(ReadOnlySpan<byte> payload, out byte family)
    {
        if (payload.Length < GenericHeaderSize)
            KernelDataException.Throw(KernelDataError.NetlinkHeaderTruncated, $"nfgenmsg of {payload.Length} bytes");
        family = payload[0];
        return payload[GenericHeaderSize..];
    }
}

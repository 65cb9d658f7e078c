using System.Buffers.Binary;
using System.Text;

namespace Tabula.Linux.Netlink;

/// <summary>
/// Walks netlink attributes (nlattr/rtattr) in a span without copying. Each attribute's length is checked
/// against its container; payload accessors check the payload size for the type asked for. A nested attribute's
/// payload is walked with a new reader over it.
/// </summary>
public ref struct AttributeReader(ReadOnlySpan<byte> attributes)
{
    ReadOnlySpan<byte> remaining = attributes;

    /// <summary>
    /// Reads the next attribute; false at the end. <paramref name="type"/> has NLA_F_NESTED and NLA_F_NET_BYTEORDER
    /// stripped. Throws <see cref="KernelDataException"/> when a header is short or a length overruns.
    /// </summary>
    public bool TryRead(out ushort type, out ReadOnlySpan<byte> payload)
    {
        type = 0;
        payload = default;
        if (remaining.IsEmpty)
            return false;
        if (remaining.Length < NetlinkHeader.AttributeHeaderSize)
            KernelDataException.Throw(KernelDataError.NetlinkAttributeTruncated, $"{remaining.Length} bytes left, header needs 4");
        ushort length = BinaryPrimitives.ReadUInt16LittleEndian(remaining);
        if (length < NetlinkHeader.AttributeHeaderSize || length > remaining.Length)
            KernelDataException.Throw(KernelDataError.NetlinkAttributeTruncated, $"nla_len {length} with {remaining.Length} bytes left");
        type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(remaining[2..]) & NetlinkHeader.AttributeTypeMask);
        payload = remaining[NetlinkHeader.AttributeHeaderSize..length];
        remaining = remaining[Math.Min(NetlinkHeader.Align(length), remaining.Length)..];
        return true;
    }

    /// <summary>A u8 payload.</summary>
    public static byte ReadByte(ReadOnlySpan<byte> payload) => Exact(payload, 1)[0];

    /// <summary>A host-order (little-endian) u16 payload.</summary>
    public static ushort ReadUInt16(ReadOnlySpan<byte> payload) => BinaryPrimitives.ReadUInt16LittleEndian(Exact(payload, 2));

    /// <summary>A host-order (little-endian) u32 payload.</summary>
    public static uint ReadUInt32(ReadOnlySpan<byte> payload) => BinaryPrimitives.ReadUInt32LittleEndian(Exact(payload, 4));

    /// <summary>A network-order u32 payload (NLA_BE32).</summary>
    public static uint ReadUInt32BigEndian(ReadOnlySpan<byte> payload) => BinaryPrimitives.ReadUInt32BigEndian(Exact(payload, 4));

    /// <summary>A host-order (little-endian) u64 payload.</summary>
    public static ulong ReadUInt64(ReadOnlySpan<byte> payload) => BinaryPrimitives.ReadUInt64LittleEndian(Exact(payload, 8));

    /// <summary>A NUL-terminated string payload (NLA_NUL_STRING); a missing NUL is refused.</summary>
    public static string ReadString(ReadOnlySpan<byte> payload) => ReadString(payload, Limits.NetlinkMaxStringBytes);

    /// <summary>A NUL-terminated string payload of at most <paramref name="maxBytes"/> bytes before the NUL.</summary>
    public static string ReadString(ReadOnlySpan<byte> payload, int maxBytes)
    {
        int end = payload.IndexOf((byte)0);
        if (end < 0)
            KernelDataException.Throw(KernelDataError.NetlinkAttributeSize, "string attribute without a terminating NUL");
        if (end > maxBytes)
            KernelDataException.Throw(KernelDataError.NetlinkAttributeSize, $"string of {end} bytes, at most {maxBytes} allowed");
        return Encoding.UTF8.GetString(payload[..end]);
    }

    /// <summary>The payload itself when it is exactly <paramref name="size"/> bytes; otherwise throws.</summary>
    public static ReadOnlySpan<byte> Exact(ReadOnlySpan<byte> payload, int size)
    {
        if (payload.Length != size)
            KernelDataException.Throw(KernelDataError.NetlinkAttributeSize, $"{payload.Length} bytes where {size} are required");
        return payload;
    }
}

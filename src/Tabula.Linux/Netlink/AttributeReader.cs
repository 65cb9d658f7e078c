using System.Buffers.Binary;
using System.Text;

namespace Tabula.Linux.Netlink;

/// <summary>
/// Walks netlink attributes (nlattr/rtattr) in a span without copying. Each attribute's length is checked
/// against its container; payload accessors check the payload size for the type asked for.
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
    public static byte ReadByte(ReadOnlySpan<byte> payload) => payload.Length == 1 ? payload[0] : WrongSize<byte>(payload, 1);

    /// <summary>A host-order (little-endian) u16 payload.</summary>
    public static ushort ReadUInt16(ReadOnlySpan<byte> payload) =>
        payload.Length == 2 ? BinaryPrimitives.ReadUInt16LittleEndian(payload) : WrongSize<ushort>(payload, 2);

    /// <summary>A host-order (little-endian) u32 payload.</summary>
    public static uint ReadUInt32(ReadOnlySpan<byte> payload) =>
        payload.Length == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(payload) : WrongSize<uint>(payload, 4);

    /// <summary>A NUL-terminated string payload (NLA_NUL_STRING); a missing NUL is refused.</summary>
    public static string ReadString(ReadOnlySpan<byte> payload)
    {
        int end = payload.IndexOf((byte)0);
        if (end < 0)
            KernelDataException.Throw(KernelDataError.NetlinkAttributeSize, "string attribute without a terminating NUL");
        return Encoding.UTF8.GetString(payload[..end]);
    }

    static T WrongSize<T>(ReadOnlySpan<byte> payload, int expected)
    {
        KernelDataException.Throw(KernelDataError.NetlinkAttributeSize, $"{payload.Length} bytes where {expected} are required");
        return default;
    }
}

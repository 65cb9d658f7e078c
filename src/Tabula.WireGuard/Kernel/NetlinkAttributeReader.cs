using System.Buffers.Binary;
using System.Text;

namespace Tabula.WireGuard.Kernel;

/// <summary>
/// Walks the attributes of one netlink message or nested attribute. Every length is checked against what remains, so
/// a malformed kernel reply (or a fuzzer's) gives <see cref="WireGuardProtocolException"/>, never an out-of-range
/// read. Attribute types are returned without the NLA_F_NESTED / NLA_F_NET_BYTEORDER bits.
/// </summary>
internal ref struct NetlinkAttributeReader(ReadOnlySpan<byte> data)
{
    ReadOnlySpan<byte> rest = data;

    /// <summary>The next attribute, or false at the end.</summary>
    public bool TryRead(out ushort type, out ReadOnlySpan<byte> payload)
    {
        if (rest.IsEmpty)
        {
            type = 0;
            payload = default;
            return false;
        }
        if (rest.Length < Netlink.AttributeHeaderLength)
            WireGuardProtocolException.Throw(ProtocolError.MalformedMessage, "attribute header truncated");
        int length = BinaryPrimitives.ReadUInt16LittleEndian(rest);
        if (length < Netlink.AttributeHeaderLength || length > rest.Length)
            WireGuardProtocolException.Throw(ProtocolError.MalformedMessage, "attribute length out of range");
        type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(rest[2..]) & Netlink.AttributeTypeMask);
        payload = rest[Netlink.AttributeHeaderLength..length];
        rest = rest[Math.Min(Netlink.Align(length), rest.Length)..];
        return true;
    }

    public static byte U8(ReadOnlySpan<byte> payload, string name) => Exact(payload, 1, name)[0];

    public static ushort U16(ReadOnlySpan<byte> payload, string name) =>
        BinaryPrimitives.ReadUInt16LittleEndian(Exact(payload, 2, name));

    public static uint U32(ReadOnlySpan<byte> payload, string name) =>
        BinaryPrimitives.ReadUInt32LittleEndian(Exact(payload, 4, name));

    public static ulong U64(ReadOnlySpan<byte> payload, string name) =>
        BinaryPrimitives.ReadUInt64LittleEndian(Exact(payload, 8, name));

    /// <summary>A NUL-terminated string (the terminator is optional, as NLA_STRING allows).</summary>
    public static string String(ReadOnlySpan<byte> payload, int maxLength, string name)
    {
        int nul = payload.IndexOf((byte)0);
        ReadOnlySpan<byte> text = nul >= 0 ? payload[..nul] : payload;
        if (text.Length > maxLength || !Ascii.IsValid(text))
            WireGuardProtocolException.Throw(ProtocolError.AttributeSize, name);
        return Encoding.ASCII.GetString(text);
    }

    public static ReadOnlySpan<byte> Exact(ReadOnlySpan<byte> payload, int size, string name)
    {
        if (payload.Length != size)
            WireGuardProtocolException.Throw(ProtocolError.AttributeSize, $"{name}: {payload.Length} bytes, expected {size}");
        return payload;
    }
}

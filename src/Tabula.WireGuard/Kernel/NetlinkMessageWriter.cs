using System.Buffers.Binary;
using System.Text;

namespace Tabula.WireGuard.Kernel;

/// <summary>
/// Builds one netlink message in a caller-owned buffer: header, optional family header, attributes (4-byte aligned,
/// nested ones patched with their length on close). Bounds are the caller's job: check <see cref="Remaining"/> with
/// the <c>*Size</c> helpers before writing; writing past the capacity throws (a bug, not input).
/// </summary>
internal sealed class NetlinkMessageWriter(byte[] buffer, int capacity)
{
    int length;

    public NetlinkMessageWriter(int capacity) : this(new byte[capacity], capacity) { }

    /// <summary>Bytes still free.</summary>
    public int Remaining => capacity - length;

    /// <summary>Bytes written so far.</summary>
    public int Length => length;

    /// <summary>Size of an attribute with a payload of <paramref name="payload"/> bytes, padding included.</summary>
    public static int AttributeSize(int payload) => Netlink.AttributeHeaderLength + Netlink.Align(payload);

    /// <summary>Starts a message; the length is filled in by <see cref="Finish"/>.</summary>
    public void Begin(ushort type, ushort flags, uint sequence)
    {
        length = 0;
        Span<byte> header = Take(Netlink.HeaderLength);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], type);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], 0);
    }

    /// <summary>struct genlmsghdr: command, version, reserved.</summary>
    public void GenericHeader(byte command, byte version)
    {
        Span<byte> header = Take(Netlink.GenericHeaderLength);
        header[0] = command;
        header[1] = version;
        header[2] = header[3] = 0;
    }

    /// <summary>Raw bytes (a fixed family header such as ifinfomsg).</summary>
    public Span<byte> Reserve(int count)
    {
        Span<byte> span = Take(Netlink.Align(count));
        span.Clear();
        return span[..count];
    }

    public void Attribute(ushort type, ReadOnlySpan<byte> payload)
    {
        Span<byte> span = Take(AttributeSize(payload.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)(Netlink.AttributeHeaderLength + payload.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(span[2..], type);
        payload.CopyTo(span[Netlink.AttributeHeaderLength..]);
        span[(Netlink.AttributeHeaderLength + payload.Length)..].Clear();
    }

    public void U8(ushort type, byte value) => Attribute(type, [value]);

    public void U16(ushort type, ushort value)
    {
        Span<byte> payload = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(payload, value);
        Attribute(type, payload);
    }

    public void U32(ushort type, uint value)
    {
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, value);
        Attribute(type, payload);
    }

    /// <summary>A NUL-terminated ASCII string (NLA_NUL_STRING / NLA_STRING both accept it).</summary>
    public void String(ushort type, string value)
    {
        Span<byte> payload = stackalloc byte[value.Length + 1];
        Encoding.ASCII.GetBytes(value, payload);
        payload[^1] = 0;
        Attribute(type, payload);
    }

    public static int StringSize(string value) => AttributeSize(value.Length + 1);

    /// <summary>Opens a nested attribute (NLA_F_NESTED set); returns its offset for <see cref="EndNested"/>.</summary>
    public int BeginNested(ushort type)
    {
        int offset = length;
        Span<byte> span = Take(Netlink.AttributeHeaderLength);
        BinaryPrimitives.WriteUInt16LittleEndian(span[2..], (ushort)(type | Netlink.AttributeNested));
        return offset;
    }

    public void EndNested(int offset)
    {
        int nestedLength = length - offset;
        if (nestedLength > ushort.MaxValue)
            throw new InvalidOperationException("nested attribute longer than 65535 bytes");
        BinaryPrimitives.WriteUInt16LittleEndian(buffer.AsSpan(offset), (ushort)nestedLength);
    }

    /// <summary>Fills in nlmsg_len and returns the message.</summary>
    public ReadOnlySpan<byte> Finish()
    {
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)length);
        return buffer.AsSpan(0, length);
    }

    Span<byte> Take(int count)
    {
        if (count > capacity - length)
            throw new InvalidOperationException($"netlink message over {capacity} bytes");
        Span<byte> span = buffer.AsSpan(length, count);
        length += count;
        return span;
    }
}

using System.Buffers.Binary;
using System.Text;

namespace Tabula.Linux.Netlink;

/// <summary>
/// Builds one netlink request: the 16-byte header, a family header, then attributes (nested allowed).
/// <see cref="Finish"/> writes the length and sequence number. Bounded by <see cref="Limits.NetlinkMaxRequestBytes"/>.
/// </summary>
public sealed class NetlinkMessageBuilder
{
    byte[] buffer = new byte[256];
    int length;

    /// <summary>Starts a message of <paramref name="type"/> with <paramref name="flags"/>.</summary>
    public NetlinkMessageBuilder(ushort type, NetlinkMessageFlags flags)
    {
        Span<byte> header = Reserve(NetlinkHeader.Size);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], type);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], (ushort)flags);
        Type = type;
    }

    /// <summary>The message type, for error messages.</summary>
    public ushort Type { get; }

    /// <summary>Appends <paramref name="size"/> zeroed bytes (padded to 4) for a family header and returns them to fill in.</summary>
    public Span<byte> AppendFamilyHeader(int size) => Reserve(size)[..size];

    /// <summary>Appends an attribute with a raw payload.</summary>
    public void AddAttribute(ushort type, ReadOnlySpan<byte> payload)
    {
        Span<byte> attribute = Reserve(NetlinkHeader.AttributeHeaderSize + payload.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(attribute, (ushort)(NetlinkHeader.AttributeHeaderSize + payload.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(attribute[2..], type);
        payload.CopyTo(attribute[NetlinkHeader.AttributeHeaderSize..]);
    }

    /// <summary>Appends a u32 attribute in host order.</summary>
    public void AddUInt32(ushort type, uint value)
    {
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, value);
        AddAttribute(type, payload);
    }

    /// <summary>Appends a NUL-terminated string attribute.</summary>
    public void AddString(ushort type, string value)
    {
        byte[] text = new byte[Encoding.UTF8.GetByteCount(value) + 1];
        Encoding.UTF8.GetBytes(value, text);
        AddAttribute(type, text);
    }

    /// <summary>Opens a nested attribute (NLA_F_NESTED set); close it with <see cref="EndNested"/>.</summary>
    public int BeginNested(ushort type)
    {
        int start = length;
        Span<byte> header = Reserve(NetlinkHeader.AttributeHeaderSize);
        BinaryPrimitives.WriteUInt16LittleEndian(header[2..], (ushort)(type | NetlinkHeader.NestedFlag));
        return start;
    }

    /// <summary>Closes the nested attribute opened at <paramref name="start"/>.</summary>
    public void EndNested(int start) =>
        BinaryPrimitives.WriteUInt16LittleEndian(buffer.AsSpan(start), checked((ushort)(length - start)));

    /// <summary>Writes nlmsg_len and nlmsg_seq and returns the finished bytes (valid until the next change).</summary>
    public ReadOnlySpan<byte> Finish(uint sequence)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)length);
        BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(8), sequence);
        return buffer.AsSpan(0, length);
    }

    Span<byte> Reserve(int size)
    {
        int padded = NetlinkHeader.Align(size);
        if (length + padded > Limits.NetlinkMaxRequestBytes)
            throw new InvalidOperationException($"netlink request exceeds {Limits.NetlinkMaxRequestBytes} bytes");
        if (length + padded > buffer.Length)
            Array.Resize(ref buffer, Math.Min(Limits.NetlinkMaxRequestBytes, Math.Max(buffer.Length * 2, length + padded)));
        Span<byte> reserved = buffer.AsSpan(length, padded);
        reserved.Clear();
        length += padded;
        return reserved;
    }
}

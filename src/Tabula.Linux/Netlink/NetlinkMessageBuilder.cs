using System.Buffers.Binary;
using System.Text;

namespace Tabula.Linux.Netlink;

/// <summary>
/// Builds one netlink message: the 16-byte header, a family header, then attributes (nested allowed).
/// <see cref="Finish"/> writes the length and sequence number. The buffer grows up to <see cref="Capacity"/>;
/// writing past it throws <see cref="InvalidOperationException"/> (a bug, not input): callers that split large
/// updates across messages check <see cref="Remaining"/> with <see cref="AttributeSize"/> first.
/// </summary>
/// <remarks>
/// One builder can be reused for a series of messages with <see cref="Reset"/>, keeping its buffer. When a message
/// carried secrets (private keys), call <see cref="ZeroBuffer"/> once done.
/// </remarks>
public sealed class NetlinkMessageBuilder
{
    byte[] buffer;
    int length;

    /// <summary>Starts a message of <paramref name="type"/> with <paramref name="flags"/>, bounded by <see cref="Limits.NetlinkMaxRequestBytes"/>.</summary>
    public NetlinkMessageBuilder(ushort type, NetlinkMessageFlags flags) : this(Limits.NetlinkMaxRequestBytes) => Reset(type, flags);

    /// <summary>A builder for messages of at most <paramref name="capacity"/> bytes; start each with <see cref="Reset"/>.</summary>
    public NetlinkMessageBuilder(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, NetlinkHeader.Size);
        Capacity = capacity;
        buffer = new byte[Math.Min(256, capacity)];
    }

    /// <summary>The message type, for error messages.</summary>
    public ushort Type { get; private set; }

    /// <summary>The largest message this builder makes.</summary>
    public int Capacity { get; }

    /// <summary>Bytes written so far, header included.</summary>
    public int Length => length;

    /// <summary>Bytes still free before <see cref="Capacity"/>.</summary>
    public int Remaining => Capacity - length;

    /// <summary>Size of an attribute with a payload of <paramref name="payload"/> bytes, padding included.</summary>
    public static int AttributeSize(int payload) => NetlinkHeader.AttributeHeaderSize + NetlinkHeader.Align(payload);

    /// <summary>Size of a NUL-terminated string attribute holding <paramref name="value"/>.</summary>
    public static int StringAttributeSize(string value) => AttributeSize(Encoding.UTF8.GetByteCount(value) + 1);

    /// <summary>Discards what was written and starts a new message of <paramref name="type"/> in the same buffer.</summary>
    public void Reset(ushort type, NetlinkMessageFlags flags)
    {
        length = 0;
        Span<byte> header = Reserve(NetlinkHeader.Size);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], type);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], (ushort)flags);
        Type = type;
    }

    /// <summary>Appends <paramref name="size"/> zeroed bytes (padded to 4) for a family header and returns them to fill in.</summary>
    public Span<byte> AppendFamilyHeader(int size) => Reserve(size)[..size];

    /// <summary>Appends an attribute with a raw payload.</summary>
    public void AddAttribute(ushort type, ReadOnlySpan<byte> payload)
    {
        Span<byte> attribute = Reserve(NetlinkHeader.AttributeHeaderSize + payload.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(attribute, checked((ushort)(NetlinkHeader.AttributeHeaderSize + payload.Length)));
        BinaryPrimitives.WriteUInt16LittleEndian(attribute[2..], type);
        payload.CopyTo(attribute[NetlinkHeader.AttributeHeaderSize..]);
    }

    /// <summary>Appends a u8 attribute.</summary>
    public void AddByte(ushort type, byte value) => AddAttribute(type, [value]);

    /// <summary>Appends a u16 attribute in host order.</summary>
    public void AddUInt16(ushort type, ushort value)
    {
        Span<byte> payload = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(payload, value);
        AddAttribute(type, payload);
    }

    /// <summary>Appends a u32 attribute in host order.</summary>
    public void AddUInt32(ushort type, uint value)
    {
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, value);
        AddAttribute(type, payload);
    }

    /// <summary>Appends a u32 attribute in network byte order (NLA_BE32, as nf_tables uses).</summary>
    public void AddUInt32BigEndian(ushort type, uint value)
    {
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(payload, value);
        AddAttribute(type, payload);
    }

    /// <summary>Appends a u64 attribute in host order.</summary>
    public void AddUInt64(ushort type, ulong value)
    {
        Span<byte> payload = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(payload, value);
        AddAttribute(type, payload);
    }

    /// <summary>Appends a NUL-terminated string attribute (NLA_NUL_STRING and NLA_STRING both accept it).</summary>
    public void AddString(ushort type, string value)
    {
        int size = Encoding.UTF8.GetByteCount(value) + 1;
        Span<byte> text = size <= 256 ? stackalloc byte[size] : new byte[size];
        Encoding.UTF8.GetBytes(value, text);
        text[^1] = 0;
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

    /// <summary>Closes the nested attribute opened at <paramref name="start"/>; nla_len is 16 bits, so at most 65535 bytes.</summary>
    public void EndNested(int start)
    {
        int nested = length - start;
        if (nested > ushort.MaxValue)
            throw new InvalidOperationException($"nested attribute of {nested} bytes exceeds nla_len");
        BinaryPrimitives.WriteUInt16LittleEndian(buffer.AsSpan(start), (ushort)nested);
    }

    /// <summary>Writes nlmsg_len and nlmsg_seq and returns the finished bytes (valid until the next change).</summary>
    public ReadOnlySpan<byte> Finish(uint sequence)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)length);
        BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(8), sequence);
        return buffer.AsSpan(0, length);
    }

    /// <summary>Zeroes the whole buffer: for messages that carried keys.</summary>
    public void ZeroBuffer()
    {
        Array.Clear(buffer);
        length = 0;
    }

    Span<byte> Reserve(int size)
    {
        int padded = NetlinkHeader.Align(size);
        if (padded > Capacity - length)
            throw new InvalidOperationException($"netlink message exceeds {Capacity} bytes");
        if (length + padded > buffer.Length)
        {
            // Grow by copying, then zero the old array: it may hold keys written earlier.
            byte[] grown = new byte[Math.Min(Capacity, Math.Max(buffer.Length * 2, length + padded))];
            buffer.AsSpan(0, length).CopyTo(grown);
            Array.Clear(buffer);
            buffer = grown;
        }
        Span<byte> reserved = buffer.AsSpan(length, padded);
        reserved.Clear();
        length += padded;
        return reserved;
    }
}

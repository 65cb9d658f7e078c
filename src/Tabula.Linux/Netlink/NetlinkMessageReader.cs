using System.Buffers.Binary;

namespace Tabula.Linux.Netlink;

/// <summary>Walks the messages of one datagram, checking every length against what was received.</summary>
public ref struct NetlinkMessageReader(ReadOnlySpan<byte> datagram)
{
    ReadOnlySpan<byte> remaining = datagram;

    /// <summary>Reads the next message; false at the end. Throws <see cref="KernelDataException"/> on a bad length.</summary>
    public bool TryRead(out NetlinkMessage message)
    {
        message = default;
        if (remaining.IsEmpty)
            return false;
        if (remaining.Length < NetlinkHeader.Size)
            KernelDataException.Throw(KernelDataError.NetlinkMessageTruncated, $"{remaining.Length} bytes left, header needs {NetlinkHeader.Size}");
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(remaining);
        if (length < NetlinkHeader.Size || length > (uint)remaining.Length)
            KernelDataException.Throw(KernelDataError.NetlinkMessageTruncated, $"nlmsg_len {length} with {remaining.Length} bytes left");
        message = new NetlinkMessage(
            BinaryPrimitives.ReadUInt16LittleEndian(remaining[4..]),
            (NetlinkMessageFlags)BinaryPrimitives.ReadUInt16LittleEndian(remaining[6..]),
            BinaryPrimitives.ReadUInt32LittleEndian(remaining[8..]),
            BinaryPrimitives.ReadUInt32LittleEndian(remaining[12..]),
            remaining[NetlinkHeader.Size..(int)length]);
        int advance = Math.Min(NetlinkHeader.Align((int)length), remaining.Length);
        remaining = remaining[advance..];
        return true;
    }
}

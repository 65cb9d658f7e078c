using System.Buffers.Binary;

namespace Tabula.Linux.Netlink;

/// <summary>
/// Several finished messages sent as one datagram (nf_tables transactions, bulk rtnetlink changes). Each message is
/// copied in when added; <see cref="NetlinkSocket.Acknowledge(NetlinkBatch, string, NetlinkMessageHandler?)"/> numbers
/// them consecutively, sends them with one send(2), and reads one acknowledgement per message that asked for one.
/// </summary>
/// <remarks>Bounded by the capacity given (at most <see cref="Limits.NetlinkMaxBatchBytes"/> by default). Not thread-safe.</remarks>
public sealed class NetlinkBatch
{
    readonly byte[] buffer;
    readonly List<int> offsets = [];
    int length;

    /// <summary>An empty batch of at most <paramref name="capacity"/> bytes.</summary>
    public NetlinkBatch(int capacity = Limits.NetlinkMaxBatchBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, NetlinkHeader.Size);
        buffer = new byte[capacity];
    }

    /// <summary>Messages in the batch.</summary>
    public int Count => offsets.Count;

    /// <summary>Bytes in the batch.</summary>
    public int Length => length;

    /// <summary>Bytes still free.</summary>
    public int Remaining => buffer.Length - length;

    /// <summary>Copies the message built so far into the batch; the builder can be reset and reused.</summary>
    public void Add(NetlinkMessageBuilder message)
    {
        ArgumentNullException.ThrowIfNull(message);
        ReadOnlySpan<byte> bytes = message.Finish(0);
        if (bytes.Length > Remaining)
            throw new InvalidOperationException($"netlink batch exceeds {buffer.Length} bytes");
        offsets.Add(length);
        bytes.CopyTo(buffer.AsSpan(length));
        length += bytes.Length;   // builders pad every part to 4, so the next message starts aligned
    }

    /// <summary>Empties the batch, zeroing what it held.</summary>
    public void Clear()
    {
        buffer.AsSpan(0, length).Clear();
        offsets.Clear();
        length = 0;
    }

    /// <summary>The type of message <paramref name="index"/>, for error messages.</summary>
    public ushort TypeOf(int index) => BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(offsets[index] + 4));

    internal bool WantsAck(int index) =>
        (BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(offsets[index] + 6)) & (ushort)NetlinkMessageFlags.Ack) != 0;

    // Numbers the messages first, first + 1, … and returns the datagram.
    internal ReadOnlySpan<byte> Seal(uint first)
    {
        for (int i = 0; i < offsets.Count; i++)
            BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(offsets[i] + 8), unchecked(first + (uint)i));
        return buffer.AsSpan(0, length);
    }
}

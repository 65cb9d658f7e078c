namespace Tabula.Linux.Netlink.Netfilter;

/// <summary>
/// The kernel's answers to one nf_tables batch: one NLMSG_ERROR per message (error 0 is an acknowledgement), plus
/// possibly one about the batch as a whole (sequence of BATCH_BEGIN or BATCH_END). <see cref="Read"/> takes one
/// received datagram; a reply that is no NLMSG_ERROR, is truncated, names a sequence outside the batch, or answers a
/// message twice throws <see cref="KernelDataException"/>.
/// </summary>
internal sealed class BatchAcknowledgements
{
    readonly uint first;
    readonly IReadOnlyList<string> operations;
    readonly bool[] answered;
    readonly List<NfTablesFailure> failures = [];

    /// <param name="first">The sequence number of BATCH_BEGIN; message i of the batch has first + 1 + i.</param>
    /// <param name="operations">What each message of the batch does, for the failures' text.</param>
    internal BatchAcknowledgements(uint first, IReadOnlyList<string> operations)
    {
        this.first = first;
        this.operations = operations;
        answered = new bool[operations.Count];
        Pending = operations.Count;
    }

    /// <summary>Messages of the batch not answered yet.</summary>
    internal int Pending { get; private set; }

    /// <summary>The refused messages so far, in the order the kernel answered.</summary>
    internal IReadOnlyList<NfTablesFailure> Failures => failures;

    /// <summary>An error about the batch as a whole (the commit failed, or a framing error), or <see cref="Errno.None"/>.</summary>
    internal Errno CommitError { get; private set; }

    /// <summary>Reads the acknowledgements in one datagram.</summary>
    internal void Read(ReadOnlySpan<byte> datagram)
    {
        var reader = new NetlinkMessageReader(datagram);
        while (reader.TryRead(out NetlinkMessage message))
        {
            if (message.Type != NetlinkHeader.Error)
                KernelDataException.Throw(KernelDataError.NetlinkUnexpectedMessage, $"message type {message.Type} in reply to a batch");
            if (message.Payload.Length < 4)
                KernelDataException.Throw(KernelDataError.NetlinkHeaderTruncated, $"nlmsgerr of {message.Payload.Length} bytes");
            int error = -BitConverter.ToInt32(message.Payload[..4]);
            long index = (long)message.Sequence - first - 1;
            if (index == -1 || index == operations.Count)
            {
                CommitError = (Errno)error;
                continue;
            }
            if (index < -1 || index > operations.Count || answered[index])
                KernelDataException.Throw(KernelDataError.NetlinkSequenceMismatch, $"sequence {message.Sequence} in reply to a batch from {first}");
            answered[index] = true;
            Pending--;
            if (error != 0)
                failures.Add(new NfTablesFailure((int)index, operations[(int)index], (Errno)error));
        }
    }

    /// <summary>Throws <see cref="NfTablesException"/> when a message or the batch was refused.</summary>
    internal void ThrowIfRefused()
    {
        if (failures.Count > 0 || CommitError != Errno.None)
            throw new NfTablesException(failures.OrderBy(f => f.Index).ToList(), CommitError);
    }
}

using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Tabula.Linux.Interop;

namespace Tabula.Linux.Netlink;

/// <summary>
/// A bound netlink socket that speaks request/acknowledge, request/dump and batches with the kernel, synchronously.
/// One request at a time; not thread-safe. Owns its descriptor and receive buffer. It lives in the network namespace
/// of the thread that opened it.
/// </summary>
/// <remarks>
/// Every reply is checked: message lengths against the datagram, the sequence number against the request,
/// a datagram larger than the buffer is refused (MSG_TRUNC) rather than silently cut. A refused request throws
/// <see cref="LinuxException"/> with the kernel's extended-ack text when it sent one.
/// </remarks>
public sealed class NetlinkSocket : IDisposable
{
    const int AfNetlink = 16;
    const int SockRaw = 3;
    const int SockCloexec = 0x80000;
    const int SolNetlink = 270;
    const int NetlinkCapAck = 10, NetlinkExtAck = 11;
    const int MsgDontWait = 0x40;
    const int MsgTrunc = 0x20;

    readonly SafeFdHandle fd;
    readonly byte[] receiveBuffer = new byte[Limits.NetlinkReceiveBufferBytes];
    uint sequence;

    NetlinkSocket(SafeFdHandle fd, NetlinkProtocol protocol)
    {
        this.fd = fd;
        Protocol = protocol;
    }

    /// <summary>The protocol family this socket was opened for.</summary>
    public NetlinkProtocol Protocol { get; }

    /// <summary>socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, protocol) and bind to a kernel-assigned port.</summary>
    public static unsafe NetlinkSocket Open(NetlinkProtocol protocol)
    {
        SafeFdHandle socket = Libc.Socket(AfNetlink, SockRaw | SockCloexec, (int)protocol);
        if (socket.IsInvalid)
        {
            var error = LinuxException.FromLastError($"socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, {(int)protocol})");
            socket.Dispose();
            throw error;
        }
        // Error replies without a copy of the request (which may be 32 KiB) and with the kernel's message text.
        // Both exist since Linux 4.3 / 4.12; without them only detail is lost, so failure is ignored.
        int one = 1;
        Libc.SetSockOpt(socket, SolNetlink, NetlinkCapAck, &one, sizeof(int));
        Libc.SetSockOpt(socket, SolNetlink, NetlinkExtAck, &one, sizeof(int));
        // struct sockaddr_nl { u16 family; u16 pad; u32 pid; u32 groups; }
        byte* address = stackalloc byte[12];
        new Span<byte>(address, 12).Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(new Span<byte>(address, 2), AfNetlink);
        if (Libc.Bind(socket, address, 12) != 0)
        {
            var error = LinuxException.FromLastError($"bind(fd={socket.Fd}, AF_NETLINK, pid=0, groups=0)");
            socket.Dispose();
            throw error;
        }
        return new NetlinkSocket(socket, protocol);
    }

    /// <summary>
    /// Sends <paramref name="request"/> (built with <see cref="NetlinkMessageFlags.Ack"/>) and waits for its
    /// acknowledgement. A negative error in the reply throws <see cref="LinuxException"/> with <paramref name="call"/>.
    /// </summary>
    public void Acknowledge(NetlinkMessageBuilder request, string call) => Request(request, call, onReply: null);

    /// <summary>
    /// Sends <paramref name="request"/> (built with <see cref="NetlinkMessageFlags.Ack"/>) and reads until its
    /// acknowledgement, handing every other reply (CTRL_CMD_GETFAMILY's answer, an echo) to <paramref name="onReply"/>;
    /// without a handler such a reply is <see cref="KernelDataError.NetlinkUnexpectedMessage"/>.
    /// </summary>
    public void Request(NetlinkMessageBuilder request, string call, NetlinkMessageHandler? onReply)
    {
        ArgumentNullException.ThrowIfNull(request);
        uint seq = ++sequence;
        ReadOnlySpan<byte> bytes = request.Finish(seq);
        if ((BinaryPrimitives.ReadUInt16LittleEndian(bytes[6..]) & (ushort)NetlinkMessageFlags.Ack) == 0)
            throw new ArgumentException("the request must carry NLM_F_ACK, or no reply ends the wait", nameof(request));
        Send(bytes, call);
        for (int datagrams = 0; datagrams < Limits.NetlinkMaxDumpMessages; datagrams++)
        {
            var reader = new NetlinkMessageReader(receiveBuffer.AsSpan(0, Receive(call, 0)));
            while (reader.TryRead(out NetlinkMessage message))
            {
                CheckSequence(message, seq);
                switch (message.Type)
                {
                    case NetlinkHeader.Error:
                        ThrowIfError(message, call);
                        return;
                    case NetlinkHeader.Done:
                        ThrowIfDoneError(message, call);
                        break;
                    case NetlinkHeader.Noop:
                        break;
                    default:
                        Deliver(message, call, onReply);
                        break;
                }
            }
        }
        KernelDataException.Throw(KernelDataError.NetlinkDumpTooLong, $"{call}: no acknowledgement in {Limits.NetlinkMaxDumpMessages} datagrams");
    }

    /// <summary>
    /// Sends a dump request and calls <paramref name="handler"/> for every message until NLMSG_DONE. An error
    /// message or a negative NLMSG_DONE status throws <see cref="LinuxException"/>.
    /// </summary>
    public void Dump(NetlinkMessageBuilder request, string call, NetlinkMessageHandler handler)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(handler);
        uint seq = ++sequence;
        Send(request.Finish(seq), call);
        for (int datagrams = 0; datagrams < Limits.NetlinkMaxDumpMessages; datagrams++)
        {
            var reader = new NetlinkMessageReader(receiveBuffer.AsSpan(0, Receive(call, 0)));
            while (reader.TryRead(out NetlinkMessage message))
            {
                CheckSequence(message, seq);
                switch (message.Type)
                {
                    case NetlinkHeader.Done:
                        ThrowIfDoneError(message, call);
                        return;
                    case NetlinkHeader.Error:
                        ThrowIfError(message, call);
                        return;
                    case NetlinkHeader.Noop:
                        break;
                    default:
                        Deliver(message, call, handler);
                        break;
                }
            }
        }
        KernelDataException.Throw(KernelDataError.NetlinkDumpTooLong, $"{call}: over {Limits.NetlinkMaxDumpMessages} datagrams");
    }

    /// <summary>
    /// Sends every message of <paramref name="batch"/> in one datagram and reads one acknowledgement for each message
    /// that carries <see cref="NetlinkMessageFlags.Ack"/> (errors for the others are read too). All replies are read
    /// before the first refusal, in batch order, is thrown as <see cref="LinuxException"/> naming the message's index
    /// and type, so the socket stays usable. Other replies go to <paramref name="onReply"/>.
    /// </summary>
    public void Acknowledge(NetlinkBatch batch, string call, NetlinkMessageHandler? onReply = null)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0)
            return;
        uint first = sequence + 1;
        sequence += (uint)batch.Count;
        int pending = 0;
        for (int i = 0; i < batch.Count; i++)
            if (batch.WantsAck(i))
                pending++;
        Send(batch.Seal(first), call);

        int failedIndex = int.MaxValue, failedErrno = 0;
        string? failedText = null;
        // Netlink handles a datagram inside send(2): once every ack is in, errors of messages without NLM_F_ACK are
        // already queued too, and a non-blocking drain collects them.
        bool draining = pending == 0;
        for (int datagrams = 0; datagrams < Limits.NetlinkMaxDumpMessages; datagrams++)
        {
            int received = Receive(call, draining ? MsgDontWait : 0);
            if (received < 0)
            {
                if (failedIndex != int.MaxValue)
                    throw new LinuxException($"{call}: message {failedIndex} of {batch.Count} (type {batch.TypeOf(failedIndex)})", failedErrno, failedText);
                return;
            }
            var reader = new NetlinkMessageReader(receiveBuffer.AsSpan(0, received));
            while (reader.TryRead(out NetlinkMessage message))
            {
                uint index = unchecked(message.Sequence - first);
                if (index >= (uint)batch.Count)
                    KernelDataException.Throw(KernelDataError.NetlinkSequenceMismatch, $"sequence {message.Sequence}, batch {first}..{first + batch.Count - 1}");
                switch (message.Type)
                {
                    case NetlinkHeader.Error:
                        int error = ReadError(message, out string? text);
                        if (error != 0 && (int)index < failedIndex)
                            (failedIndex, failedErrno, failedText) = ((int)index, -error, text);
                        if (batch.WantsAck((int)index) && --pending == 0)
                            draining = true;
                        break;
                    case NetlinkHeader.Noop:
                    case NetlinkHeader.Done:
                        break;
                    default:
                        Deliver(message, call, onReply);
                        break;
                }
            }
        }
        KernelDataException.Throw(KernelDataError.NetlinkDumpTooLong, $"{call}: acknowledgements not complete in {Limits.NetlinkMaxDumpMessages} datagrams");
    }

    /// <summary>
    /// Sends <paramref name="datagram"/> (finished messages numbered with <see cref="NextSequence"/>) as one datagram,
    /// for callers that match replies to messages themselves (nf_tables batches larger than a <see cref="NetlinkBatch"/>).
    /// </summary>
    public void SendDatagram(ReadOnlySpan<byte> datagram, string call) => Send(datagram, call);

    /// <summary>Receives one datagram; the span borrows the receive buffer until the next call.</summary>
    public ReadOnlySpan<byte> ReceiveDatagram(string call) => receiveBuffer.AsSpan(0, Receive(call, 0));

    /// <summary>Reserves the next sequence number for a message sent with <see cref="SendDatagram"/>.</summary>
    public uint NextSequence() => ++sequence;

    /// <summary>
    /// Raises the send and receive buffers (SO_SNDBUFFORCE/SO_RCVBUFFORCE, which need CAP_NET_ADMIN): a batch goes
    /// to the kernel as one datagram, which must fit the send buffer, and brings back one acknowledgement skb per message.
    /// </summary>
    public unsafe void SetBufferSizes(int sendBytes, int receiveBytes)
    {
        const int SolSocket = 1, SoSndbufForce = 32, SoRcvbufForce = 33;
        int value = sendBytes;
        if (Libc.SetSockOpt(fd, SolSocket, SoSndbufForce, &value, sizeof(int)) != 0)
            LinuxException.ThrowLastError($"setsockopt(fd={fd.Fd}, SO_SNDBUFFORCE, {sendBytes})");
        value = receiveBytes;
        if (Libc.SetSockOpt(fd, SolSocket, SoRcvbufForce, &value, sizeof(int)) != 0)
            LinuxException.ThrowLastError($"setsockopt(fd={fd.Fd}, SO_RCVBUFFORCE, {receiveBytes})");
    }

    /// <summary>SO_RCVTIMEO: a receive that waits longer fails with EAGAIN instead of blocking for ever.</summary>
    public unsafe void SetReceiveTimeout(TimeSpan timeout)
    {
        const int SolSocket = 1, SoRcvtimeo = 20;
        long* timeval = stackalloc long[2];   // struct timeval { time_t tv_sec; suseconds_t tv_usec; } on 64-bit Linux
        timeval[0] = (long)timeout.TotalSeconds;
        timeval[1] = timeout.Microseconds + timeout.Milliseconds * 1000L;
        if (Libc.SetSockOpt(fd, SolSocket, SoRcvtimeo, timeval, 16) != 0)
            LinuxException.ThrowLastError($"setsockopt(fd={fd.Fd}, SO_RCVTIMEO, {timeout.TotalMilliseconds} ms)");
    }

    /// <inheritdoc />
    public void Dispose() => fd.Dispose();

    unsafe void Send(ReadOnlySpan<byte> bytes, string call)
    {
        fixed (byte* p = bytes)
        {
            nint sent;
            do sent = Libc.Send(fd, p, (nuint)bytes.Length, 0);
            while (sent < 0 && Marshal.GetLastPInvokeError() == (int)Errno.EINTR);
            if (sent < 0)
                LinuxException.ThrowLastError($"send(fd={fd.Fd}, {call}, {bytes.Length} bytes)");
            if (sent != bytes.Length)
                throw new LinuxException($"send(fd={fd.Fd}, {call}, {bytes.Length} bytes) sent {sent}", (int)Errno.EMSGSIZE);
        }
    }

    // The datagram's length, or -1 when MSG_DONTWAIT found nothing queued.
    unsafe int Receive(string call, int flags)
    {
        fixed (byte* p = receiveBuffer)
        {
            nint n;
            do n = Libc.Recv(fd, p, (nuint)receiveBuffer.Length, MsgTrunc | flags);
            while (n < 0 && Marshal.GetLastPInvokeError() == (int)Errno.EINTR);
            if (n < 0)
            {
                if ((flags & MsgDontWait) != 0 && Marshal.GetLastPInvokeError() == (int)Errno.EAGAIN)
                    return -1;
                LinuxException.ThrowLastError($"recv(fd={fd.Fd}, {call})");
            }
            if (n > receiveBuffer.Length)
                KernelDataException.Throw(KernelDataError.NetlinkReplyTooLarge, $"{call}: {n} bytes, buffer {receiveBuffer.Length}");
            return (int)n;
        }
    }

    static void Deliver(NetlinkMessage message, string call, NetlinkMessageHandler? handler)
    {
        if (message.Type == NetlinkHeader.Overrun || handler is null)
            KernelDataException.Throw(KernelDataError.NetlinkUnexpectedMessage, $"{call}: message type {message.Type}");
        handler(message);
    }

    static void CheckSequence(NetlinkMessage message, uint expected)
    {
        if (message.Sequence != expected)
            KernelDataException.Throw(KernelDataError.NetlinkSequenceMismatch, $"sequence {message.Sequence}, expected {expected}");
    }

    static void ThrowIfError(NetlinkMessage message, string call)
    {
        int error = ReadError(message, out string? text);
        if (error != 0)
            throw new LinuxException(call, -error, text);
    }

    static void ThrowIfDoneError(NetlinkMessage message, string call)
    {
        if (message.Payload.Length >= 4 && BinaryPrimitives.ReadInt32LittleEndian(message.Payload) is < 0 and var status)
            throw new LinuxException(call, -status);
    }

    // struct nlmsgerr { int error; struct nlmsghdr msg; [request payload unless NLM_F_CAPPED]; [TLVs if NLM_F_ACK_TLVS] }.
    internal static int ReadError(NetlinkMessage message, out string? kernelMessage)
    {
        kernelMessage = null;
        ReadOnlySpan<byte> payload = message.Payload;
        if (payload.Length < 4)
            KernelDataException.Throw(KernelDataError.NetlinkHeaderTruncated, $"nlmsgerr of {payload.Length} bytes");
        int error = BinaryPrimitives.ReadInt32LittleEndian(payload);
        var flags = (ushort)message.Flags;
        if ((flags & NetlinkHeader.ErrorAckTlvs) == 0 || payload.Length < 4 + NetlinkHeader.Size)
            return error;
        int offset = 4 + NetlinkHeader.Size;
        if ((flags & NetlinkHeader.ErrorCapped) == 0)
            offset = 4 + (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]), (uint)payload.Length - 4);
        var attributes = new AttributeReader(payload[Math.Min(NetlinkHeader.Align(offset), payload.Length)..]);
        while (attributes.TryRead(out ushort type, out ReadOnlySpan<byte> value))
            if (type == NetlinkHeader.ErrorAttributeMessage)
                kernelMessage = AttributeReader.ReadString(value, 256);
        return error;
    }
}

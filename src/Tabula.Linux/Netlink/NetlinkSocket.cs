using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Tabula.Linux.Interop;

namespace Tabula.Linux.Netlink;

/// <summary>
/// A bound netlink socket that speaks request/acknowledge and request/dump with the kernel, synchronously.
/// One request at a time; not thread-safe. Owns its descriptor and receive buffer.
/// </summary>
/// <remarks>
/// Every reply is checked: message lengths against the datagram, the sequence number against the request,
/// a datagram larger than the buffer is refused (MSG_TRUNC) rather than silently cut.
/// </remarks>
public sealed class NetlinkSocket : IDisposable
{
    const int AfNetlink = 16;
    const int SockRaw = 3;
    const int SockCloexec = 0x80000;
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
    /// Sends <paramref name="request"/> (add <see cref="NetlinkMessageFlags.Ack"/> when building it) and waits for
    /// its acknowledgement. A negative error in the reply throws <see cref="LinuxException"/> with <paramref name="call"/>.
    /// </summary>
    public void Acknowledge(NetlinkMessageBuilder request, string call)
    {
        uint seq = Send(request, call);
        int received = Receive(call);
        var reader = new NetlinkMessageReader(receiveBuffer.AsSpan(0, received));
        while (reader.TryRead(out NetlinkMessage message))
        {
            CheckSequence(message, seq);
            if (message.Type == NetlinkHeader.Error)
            {
                int error = ReadError(message);
                if (error != 0)
                    throw new LinuxException(call, -error);
                return;
            }
        }
        KernelDataException.Throw(KernelDataError.NetlinkUnexpectedMessage, $"{call}: no acknowledgement in the reply");
    }

    /// <summary>
    /// Sends a dump request and calls <paramref name="handler"/> for every message until NLMSG_DONE. An error
    /// message or a negative NLMSG_DONE status throws <see cref="LinuxException"/>.
    /// </summary>
    public void Dump(NetlinkMessageBuilder request, string call, NetlinkMessageHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        uint seq = Send(request, call);
        for (int datagrams = 0; datagrams < Limits.NetlinkMaxDumpMessages; datagrams++)
        {
            int received = Receive(call);
            var reader = new NetlinkMessageReader(receiveBuffer.AsSpan(0, received));
            while (reader.TryRead(out NetlinkMessage message))
            {
                CheckSequence(message, seq);
                switch (message.Type)
                {
                    case NetlinkHeader.Done:
                        if (message.Payload.Length >= 4 && BinaryPrimitives.ReadInt32LittleEndian(message.Payload) is < 0 and var status)
                            throw new LinuxException(call, -status);
                        return;
                    case NetlinkHeader.Error:
                        int error = ReadError(message);
                        if (error != 0)
                            throw new LinuxException(call, -error);
                        return;
                    case NetlinkHeader.Noop:
                        break;
                    default:
                        handler(message);
                        break;
                }
            }
        }
        KernelDataException.Throw(KernelDataError.NetlinkDumpTooLong, $"{call}: over {Limits.NetlinkMaxDumpMessages} datagrams");
    }

    /// <inheritdoc />
    public void Dispose() => fd.Dispose();

    unsafe uint Send(NetlinkMessageBuilder request, string call)
    {
        uint seq = ++sequence;
        ReadOnlySpan<byte> bytes = request.Finish(seq);
        fixed (byte* p = bytes)
        {
            nint sent;
            do sent = Libc.Send(fd, p, (nuint)bytes.Length, 0);
            while (sent < 0 && Marshal.GetLastPInvokeError() == (int)Errno.EINTR);
            if (sent < 0)
                LinuxException.ThrowLastError($"send(fd={fd.Fd}, {call}, {bytes.Length} bytes)");
        }
        return seq;
    }

    unsafe int Receive(string call)
    {
        fixed (byte* p = receiveBuffer)
        {
            nint n;
            do n = Libc.Recv(fd, p, (nuint)receiveBuffer.Length, MsgTrunc);
            while (n < 0 && Marshal.GetLastPInvokeError() == (int)Errno.EINTR);
            if (n < 0)
                LinuxException.ThrowLastError($"recv(fd={fd.Fd}, {call})");
            if (n > receiveBuffer.Length)
                KernelDataException.Throw(KernelDataError.NetlinkReplyTooLarge, $"{call}: {n} bytes, buffer {receiveBuffer.Length}");
            return (int)n;
        }
    }

    static void CheckSequence(NetlinkMessage message, uint expected)
    {
        if (message.Sequence != expected)
            KernelDataException.Throw(KernelDataError.NetlinkSequenceMismatch, $"sequence {message.Sequence}, expected {expected}");
    }

    // struct nlmsgerr { int error; struct nlmsghdr msg; } — the echoed header may be cut to 16 bytes (NETLINK_CAP_ACK).
    static int ReadError(NetlinkMessage message)
    {
        if (message.Payload.Length < 4)
            KernelDataException.Throw(KernelDataError.NetlinkHeaderTruncated, $"nlmsgerr of {message.Payload.Length} bytes");
        return BinaryPrimitives.ReadInt32LittleEndian(message.Payload);
    }
}

using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Tabula.WireGuard.Kernel.Interop;

namespace Tabula.WireGuard.Kernel;

/// <summary>
/// A netlink socket to the kernel: <c>socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, protocol)</c>, bound with port id 0
/// (the kernel picks one). It lives in the network namespace of the thread that opened it. Requests are sent one at
/// a time and their replies read to the end before the next; sequence numbers tie replies to requests.
/// Not thread-safe: one owner at a time.
/// </summary>
internal sealed unsafe class NetlinkSocket : IDisposable
{
    readonly SafeFdHandle fd;
    readonly string protocolName;
    readonly byte[] receiveBuffer = new byte[Limits.NetlinkReceiveBufferBytes];
    uint sequence = (uint)Environment.TickCount;

    NetlinkSocket(SafeFdHandle fd, string protocolName) => (this.fd, this.protocolName) = (fd, protocolName);

    /// <summary>Handles one reply message: its type and everything after the netlink header.</summary>
    public delegate void ReplyHandler(ushort type, ReadOnlySpan<byte> payload);

    /// <summary>Opens and binds a socket for <paramref name="protocol"/> (<see cref="Netlink.ProtocolGeneric"/>, <see cref="Netlink.ProtocolRoute"/>).</summary>
    public static NetlinkSocket Open(int protocol)
    {
        string name = protocol switch
        {
            Netlink.ProtocolGeneric => "NETLINK_GENERIC",
            Netlink.ProtocolRoute => "NETLINK_ROUTE",
            _ => protocol.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        var fd = Libc.Socket(Libc.AF_NETLINK, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, protocol);
        if (fd.IsInvalid)
        {
            int errno = Marshal.GetLastPInvokeError();
            fd.Dispose();
            throw new WireGuardSystemException($"socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, {name})", errno);
        }
        var socket = new NetlinkSocket(fd, name);
        try
        {
            // Error replies without a copy of our (up to 32 KiB) request, and with the kernel's message text.
            // Both exist since Linux 4.3 / 4.12; failure only costs detail, so it is ignored.
            int one = 1;
            Libc.SetSockOpt(fd, Libc.SOL_NETLINK, Libc.NETLINK_CAP_ACK, &one, sizeof(int));
            Libc.SetSockOpt(fd, Libc.SOL_NETLINK, Libc.NETLINK_EXT_ACK, &one, sizeof(int));
            var address = new Libc.SockaddrNetlink { Family = Libc.AF_NETLINK };
            if (Libc.Bind(fd, &address, (uint)sizeof(Libc.SockaddrNetlink)) != 0)
                throw new WireGuardSystemException($"bind(AF_NETLINK, {name})", Marshal.GetLastPInvokeError());
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>A fresh sequence number for the next request.</summary>
    public uint NextSequence() => ++sequence;

    /// <summary>
    /// Sends a request carrying NLM_F_ACK and reads until its acknowledgement. A non-zero error in the ack becomes
    /// <see cref="WireGuardDeviceException"/> (or whatever <paramref name="mapError"/> returns for that errno).
    /// Other replies before the ack go to <paramref name="onReply"/>.
    /// </summary>
    public void Request(ReadOnlySpan<byte> message, string operation, Func<int, Exception?>? mapError = null,
        ReplyHandler? onReply = null)
    {
        uint seq = BinaryPrimitives.ReadUInt32LittleEndian(message[8..]);
        Send(message, operation);
        ReadReplies(seq, operation, mapError, onReply, dump: false);
    }

    /// <summary>Sends a NLM_F_DUMP request and hands each reply message to <paramref name="onReply"/> until NLMSG_DONE.</summary>
    public void Dump(ReadOnlySpan<byte> message, string operation, ReplyHandler onReply, Func<int, Exception?>? mapError = null)
    {
        uint seq = BinaryPrimitives.ReadUInt32LittleEndian(message[8..]);
        Send(message, operation);
        ReadReplies(seq, operation, mapError, onReply, dump: true);
    }

    void Send(ReadOnlySpan<byte> message, string operation)
    {
        fixed (byte* pointer = message)
        {
            while (true)
            {
                nint sent = Libc.Send(fd, pointer, (nuint)message.Length, 0);
                if (sent == message.Length)
                    return;
                int errno = sent < 0 ? Marshal.GetLastPInvokeError() : Errno.EMSGSIZE;
                if (errno == Errno.EINTR)
                    continue;
                throw new WireGuardSystemException($"send({protocolName}, {operation}, {message.Length} bytes)", errno);
            }
        }
    }

    int Receive(string operation)
    {
        fixed (byte* pointer = receiveBuffer)
        {
            while (true)
            {
                // MSG_TRUNC makes recv report the real datagram length, so an oversized reply is detected, not cut.
                nint received = Libc.Receive(fd, pointer, (nuint)receiveBuffer.Length, Libc.MSG_TRUNC);
                if (received >= 0)
                {
                    if (received > receiveBuffer.Length)
                        WireGuardProtocolException.Throw(ProtocolError.MessageTooLarge, $"{received} bytes");
                    return (int)received;
                }
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Errno.EINTR)
                    throw new WireGuardSystemException($"recv({protocolName}, {operation})", errno);
            }
        }
    }

    void ReadReplies(uint seq, string operation, Func<int, Exception?>? mapError, ReplyHandler? onReply, bool dump)
    {
        while (true)
        {
            int length = Receive(operation);
            ReadOnlySpan<byte> datagram = receiveBuffer.AsSpan(0, length);
            while (!datagram.IsEmpty)
            {
                if (datagram.Length < Netlink.HeaderLength)
                    WireGuardProtocolException.Throw(ProtocolError.MalformedMessage, "header truncated");
                int messageLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(datagram);
                if (messageLength < Netlink.HeaderLength || messageLength > datagram.Length)
                    WireGuardProtocolException.Throw(ProtocolError.MalformedMessage, "message length out of range");
                ushort type = BinaryPrimitives.ReadUInt16LittleEndian(datagram[4..]);
                ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(datagram[6..]);
                uint messageSeq = BinaryPrimitives.ReadUInt32LittleEndian(datagram[8..]);
                ReadOnlySpan<byte> payload = datagram[Netlink.HeaderLength..messageLength];
                datagram = datagram[Math.Min(Netlink.Align(messageLength), datagram.Length)..];

                if (messageSeq != seq)
                    WireGuardProtocolException.Throw(ProtocolError.UnexpectedMessage, $"sequence {messageSeq}, expected {seq}");
                switch (type)
                {
                    case Netlink.Noop:
                        continue;
                    case Netlink.Error:
                        int error = ReadError(payload, flags, out string? kernelMessage);
                        if (error == 0)
                        {
                            if (!dump)
                                return;
                            continue;
                        }
                        ThrowError(operation, -error, kernelMessage, mapError);
                        return;
                    case Netlink.Done:
                        if (payload.Length >= 4 && BinaryPrimitives.ReadInt32LittleEndian(payload) is var doneError and < 0)
                            ThrowError(operation, -doneError, null, mapError);
                        if (dump)
                            return;
                        continue;
                    case Netlink.Overrun:
                        WireGuardProtocolException.Throw(ProtocolError.UnexpectedMessage, "NLMSG_OVERRUN");
                        return;
                    default:
                        if (onReply is null)
                            WireGuardProtocolException.Throw(ProtocolError.UnexpectedMessage, $"type {type}");
                        onReply(type, payload);
                        // A single-part reply to a non-dump request is complete without NLMSG_DONE only when
                        // the caller asked for no ack; we always ask, so keep reading.
                        break;
                }
            }
        }
    }

    // struct nlmsgerr: int error; struct nlmsghdr msg; [payload unless NLM_F_CAPPED]; [TLVs if NLM_F_ACK_TLVS].
    static int ReadError(ReadOnlySpan<byte> payload, ushort flags, out string? kernelMessage)
    {
        kernelMessage = null;
        if (payload.Length < 4 + Netlink.HeaderLength)
            WireGuardProtocolException.Throw(ProtocolError.MalformedMessage, "nlmsgerr truncated");
        int error = BinaryPrimitives.ReadInt32LittleEndian(payload);
        if ((flags & Netlink.AckTlvs) == 0)
            return error;
        int offset = 4 + Netlink.HeaderLength;
        if ((flags & Netlink.Capped) == 0)
            offset = 4 + (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]), (uint)payload.Length - 4);
        offset = Math.Min(Netlink.Align(offset), payload.Length);
        var attributes = new NetlinkAttributeReader(payload[offset..]);
        while (attributes.TryRead(out ushort type, out var value))
            if (type == Netlink.ErrorAttributeMessage)
                kernelMessage = NetlinkAttributeReader.String(value, 256, "NLMSGERR_ATTR_MSG");
        return error;
    }

    static void ThrowError(string operation, int errno, string? kernelMessage, Func<int, Exception?>? mapError)
    {
        if (mapError?.Invoke(errno) is { } mapped)
            throw mapped;
        throw new WireGuardDeviceException(operation, errno, kernelMessage);
    }

    public void Dispose() => fd.Dispose();
}

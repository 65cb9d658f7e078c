using System.Diagnostics;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;

namespace Tabula.Machine.Network;

/// <summary>Sends and receives DHCP datagrams on one interface.</summary>
internal interface IDhcpTransport : IDisposable
{
    void Send(ReadOnlySpan<byte> datagram);

    /// <summary>The next datagram, or null when <paramref name="timeout"/> passes first.</summary>
    byte[]? Receive(TimeSpan timeout);
}

/// <summary>
/// A UDP socket on 0.0.0.0:68 tied to the interface with SO_BINDTODEVICE and allowed to broadcast: before the
/// interface has an address, requests go to 255.255.255.255:67 from 0.0.0.0 and, with the broadcast flag set in
/// every request, the server's replies come back to 255.255.255.255:68 (reference §8 option b).
/// </summary>
internal sealed class UdpDhcpTransport : IDhcpTransport
{
    const int SolSocket = 1, SoBindToDevice = 25;
    readonly Socket socket;
    readonly byte[] buffer = new byte[MachineLimits.MaxDhcpMessageBytes + 1];

    public UdpDhcpTransport(string interfaceName)
    {
        socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.EnableBroadcast = true;
            socket.SetRawSocketOption(SolSocket, SoBindToDevice, Encoding.ASCII.GetBytes(interfaceName + "\0"));
            socket.Bind(new IPEndPoint(IPAddress.Any, 68));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public void Send(ReadOnlySpan<byte> datagram) => socket.SendTo(datagram, SocketFlags.None, new IPEndPoint(IPAddress.Broadcast, 67));

    public byte[]? Receive(TimeSpan timeout)
    {
        if (!socket.Poll(timeout, SelectMode.SelectRead))
            return null;
        int n = socket.Receive(buffer);
        return buffer[..n];
    }

    public void Dispose() => socket.Dispose();
}

/// <summary>The configuration a DHCP server gave us.</summary>
/// <param name="Address">Our address.</param>
/// <param name="PrefixLength">From the subnet mask.</param>
/// <param name="Gateway">The default gateway (option 121's 0/0 route, else the first router).</param>
/// <param name="DnsServers">Option 6.</param>
/// <param name="Server">The server identifier (option 54).</param>
/// <param name="LeaseSeconds">Option 51; 0 when the server sent none.</param>
public sealed record DhcpLease(IPAddress Address, int PrefixLength, IPAddress? Gateway, IReadOnlyList<IPAddress> DnsServers,
    IPAddress Server, uint LeaseSeconds)
{
    /// <summary>When to renew (RFC 2131 T1: half the lease), at least <see cref="MachineLimits.MinRenewInterval"/>;
    /// a lease of 0 or 0xffffffff (infinite) seconds is renewed every 12 hours.</summary>
    public TimeSpan RenewAfter => LeaseSeconds is 0 or uint.MaxValue
        ? TimeSpan.FromHours(12)
        : TimeSpan.FromSeconds(Math.Max(LeaseSeconds / 2.0, MachineLimits.MinRenewInterval.TotalSeconds));
}

/// <summary>
/// A small DHCPv4 client (RFC 2131 §3.1, §4.4): DISCOVER → OFFER → REQUEST → ACK, retransmitting with exponential
/// back-off (1, 2, 4, 8 … s, capped at 8 s) until the deadline; a NAK restarts from DISCOVER. Replies are matched by
/// transaction id and hardware address; malformed datagrams are dropped with a note. <see cref="Renew"/> is the
/// RENEWING step for a long-running machine (the relay); stboot never renews: the booted OS runs its own client long
/// before any lease it takes ends.
/// </summary>
internal sealed class DhcpClient(IDhcpTransport transport, PhysicalAddress mac, Func<uint> newTransactionId, Action<string>? note = null)
{
    public DhcpLease? Acquire(TimeSpan deadline)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan backoff = TimeSpan.FromSeconds(1);
        while (clock.Elapsed < deadline)
        {
            uint xid = newTransactionId();
            ushort Seconds() => (ushort)Math.Min(clock.Elapsed.TotalSeconds, ushort.MaxValue);

            transport.Send(DhcpMessage.BuildClient(DhcpMessageType.Discover, xid, mac, Seconds()));
            DhcpMessage? offer = Await(xid, DhcpMessageType.Offer, Min(backoff, deadline - clock.Elapsed));
            if (offer is null)
            {
                backoff = Next(backoff);
                continue;
            }
            if (offer.ServerIdentifier is null)
            {
                note?.Invoke("offer without a server identifier ignored");
                continue;
            }
            transport.Send(DhcpMessage.BuildClient(DhcpMessageType.Request, xid, mac, Seconds(), offer.YourAddress, offer.ServerIdentifier));
            DhcpMessage? answer = Await(xid, DhcpMessageType.Ack, Min(TimeSpan.FromSeconds(4), deadline - clock.Elapsed), alsoAccept: DhcpMessageType.Nak);
            if (answer is null || answer.Type == DhcpMessageType.Nak)
            {
                note?.Invoke(answer is null ? "no ACK for our REQUEST" : "server sent NAK");
                backoff = Next(backoff);
                continue;
            }
            return new DhcpLease(answer.YourAddress, answer.PrefixLength, answer.DefaultGateway,
                answer.DnsServers.Count > 0 ? answer.DnsServers : offer.DnsServers,
                answer.ServerIdentifier ?? offer.ServerIdentifier, answer.LeaseSeconds ?? 0);
        }
        return null;
    }

    /// <summary>
    /// RFC 2131 §4.4.5 RENEWING (sent by broadcast, so it also serves as REBINDING): a REQUEST with ciaddr set and no
    /// server identifier or requested address. Returns the new lease, or null on NAK or no answer within
    /// <paramref name="timeout"/>.
    /// </summary>
    public DhcpLease? Renew(DhcpLease lease, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan backoff = TimeSpan.FromSeconds(1);
        while (clock.Elapsed < timeout)
        {
            uint xid = newTransactionId();
            transport.Send(DhcpMessage.BuildClient(DhcpMessageType.Request, xid, mac, 0, clientAddress: lease.Address));
            DhcpMessage? answer = Await(xid, DhcpMessageType.Ack, Min(backoff, timeout - clock.Elapsed), alsoAccept: DhcpMessageType.Nak);
            if (answer is null)
            {
                backoff = Next(backoff);
                continue;
            }
            if (answer.Type == DhcpMessageType.Nak)
            {
                note?.Invoke("server sent NAK to our renewal");
                return null;
            }
            return new DhcpLease(answer.YourAddress, answer.PrefixLength, answer.DefaultGateway,
                answer.DnsServers.Count > 0 ? answer.DnsServers : lease.DnsServers,
                answer.ServerIdentifier ?? lease.Server, answer.LeaseSeconds ?? 0);
        }
        return null;
    }

    static TimeSpan Next(TimeSpan backoff) => backoff * 2 > TimeSpan.FromSeconds(8) ? TimeSpan.FromSeconds(8) : backoff * 2;

    static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    DhcpMessage? Await(uint xid, DhcpMessageType wanted, TimeSpan wait, DhcpMessageType? alsoAccept = null)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < wait)
        {
            byte[]? datagram = transport.Receive(wait - clock.Elapsed);
            if (datagram is null)
                return null;
            DhcpMessage reply;
            try { reply = DhcpMessage.Parse(datagram); }
            catch (DhcpException e)
            {
                note?.Invoke($"dropped a datagram: {e.Message}");
                continue;
            }
            if (reply.TransactionId != xid || !reply.ClientHardwareAddress.Equals(mac))
                continue;
            if (reply.Type == wanted || reply.Type == alsoAccept)
                return reply;
        }
        return null;
    }
}

using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using CsCheck;
using Tabula.Machine.Network;

namespace Tabula.Machine.Tests;

public sealed class DhcpTests
{
    static readonly PhysicalAddress Mac = PhysicalAddress.Parse("52:54:00:7a:b0:01");

    /// <summary>A server reply built by hand (what dnsmasq sends), options given as (code, bytes).</summary>
    internal static byte[] Reply(DhcpMessageType type, uint xid, PhysicalAddress mac, IPAddress yiaddr, params (byte Code, byte[] Value)[] options)
    {
        var message = new List<byte>(new byte[DhcpMessage.FixedHeaderBytes]);
        message[0] = 2; message[1] = 1; message[2] = 6;
        var bytes = message.ToArray();
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), xid);
        yiaddr.GetAddressBytes().CopyTo(bytes, 16);
        mac.GetAddressBytes().CopyTo(bytes, 28);
        var all = new List<byte>(bytes) { 0x63, 0x82, 0x53, 0x63, 53, 1, (byte)type };
        foreach (var (code, value) in options)
        {
            all.Add(code);
            all.Add((byte)value.Length);
            all.AddRange(value);
        }
        all.Add(255);
        return [.. all];
    }

    [Fact]
    public void Client_messages_are_broadcast_requests_with_the_mac_and_the_options_in_order()
    {
        byte[] request = DhcpMessage.BuildClient(DhcpMessageType.Request, 0xdeadbeef, Mac, 3, IPAddress.Parse("10.0.0.5"), IPAddress.Parse("10.0.0.1"));
        Assert.Equal(300, request.Length);
        Assert.Equal([1, 1, 6], request[..3]);
        Assert.Equal(0xdeadbeef, BinaryPrimitives.ReadUInt32BigEndian(request.AsSpan(4)));
        Assert.Equal(0x8000, BinaryPrimitives.ReadUInt16BigEndian(request.AsSpan(10)));
        Assert.Equal(Mac.GetAddressBytes(), request[28..34]);
        Assert.Equal([0x63, 0x82, 0x53, 0x63, 53, 1, 3, 61, 7, 1, .. Mac.GetAddressBytes(), 50, 4, 10, 0, 0, 5, 54, 4, 10, 0, 0, 1], request[236..264]);
    }

    [Fact]
    public void Ack_parses_mask_router_dns_lease_and_classless_routes_win_over_the_router()
    {
        byte[] ack = Reply(DhcpMessageType.Ack, 7, Mac, IPAddress.Parse("10.1.2.3"),
            (1, [255, 255, 240, 0]), (3, [10, 1, 0, 1]), (6, [9, 9, 9, 9, 1, 1, 1, 1]), (51, [0, 0, 14, 16]), (54, [10, 1, 0, 254]),
            (121, [24, 192, 168, 7, 10, 1, 0, 2, 0, 10, 1, 0, 3]));
        var message = DhcpMessage.Parse(ack);
        Assert.Equal(DhcpMessageType.Ack, message.Type);
        Assert.Equal(20, message.PrefixLength);
        Assert.Equal(IPAddress.Parse("10.1.0.3"), message.DefaultGateway);      // 0/0 from option 121, not option 3
        Assert.Equal([IPAddress.Parse("9.9.9.9"), IPAddress.Parse("1.1.1.1")], message.DnsServers);
        Assert.Equal(3600u, message.LeaseSeconds);
        Assert.Equal(new DhcpRoute(IPAddress.Parse("192.168.7.0"), 24, IPAddress.Parse("10.1.0.2")), message.ClasslessRoutes[0]);
    }

    [Theory]
    [InlineData("Truncated")]
    [InlineData("BadMagicCookie")]
    [InlineData("OptionOverrun")]
    [InlineData("BadOptionLength")]
    [InlineData("MissingMessageType")]
    [InlineData("NotAReply")]
    public void Malformed_replies_give_their_typed_error(string error)
    {
        var expected = Enum.Parse<DhcpError>(error);
        byte[] good = Reply(DhcpMessageType.Offer, 1, Mac, IPAddress.Parse("10.0.0.2"), (1, [255, 255, 255, 0]));
        byte[] bad = expected switch
        {
            DhcpError.Truncated => good[..200],
            DhcpError.BadMagicCookie => [.. good[..236], 1, 2, 3, 4, .. good[240..]],
            DhcpError.OptionOverrun => [.. good[..^1], 6, 200, 1],
            DhcpError.BadOptionLength => Reply(DhcpMessageType.Offer, 1, Mac, IPAddress.Any, (1, [255, 255, 0])),
            DhcpError.MissingMessageType => [.. good[..240], 255],
            _ => [1, .. good[1..]],
        };
        Assert.Equal(expected, Assert.Throws<DhcpException>(() => DhcpMessage.Parse(bad)).Error);
    }

    [Fact]
    public void Random_and_mutated_datagrams_give_a_message_or_a_DhcpException_only()
    {
        byte[] seed = Reply(DhcpMessageType.Ack, 1, Mac, IPAddress.Parse("10.0.0.2"), (1, [255, 255, 255, 0]), (3, [10, 0, 0, 1]), (121, [0, 10, 0, 0, 1]));
        var mutated = Gen.Int[0, seed.Length - 1].Array[1, 8].Select(Gen.Byte.Array[1, 8], (positions, values) =>
        {
            byte[] copy = (byte[])seed.Clone();
            for (int i = 0; i < positions.Length; i++)
                copy[positions[i]] = values[i % values.Length];
            return copy;
        });
        Gen.OneOf(Gen.Byte.Array[0, 1600], mutated).Sample(bytes =>
        {
            try { DhcpMessage.Parse(bytes); }
            catch (DhcpException) { }
        }, iter: 20_000);
    }

    [Fact]
    public void Client_completes_discover_offer_request_ack_ignoring_foreign_and_broken_replies()
    {
        var server = new FakeDhcpServer(Mac);
        var client = new DhcpClient(server, Mac, () => 0x1234);
        DhcpLease? lease = client.Acquire(TimeSpan.FromSeconds(5));
        Assert.NotNull(lease);
        Assert.Equal(IPAddress.Parse("10.99.0.50"), lease.Address);
        Assert.Equal(24, lease.PrefixLength);
        Assert.Equal(IPAddress.Parse("10.99.0.1"), lease.Gateway);
        Assert.Equal([DhcpMessageType.Discover, DhcpMessageType.Request], server.Seen);
    }

    [Fact]
    public void Client_gives_up_at_the_deadline_when_nobody_answers()
    {
        var client = new DhcpClient(new SilentTransport(), Mac, () => 1);
        Assert.Null(client.Acquire(TimeSpan.FromMilliseconds(300)));
    }

    sealed class SilentTransport : IDhcpTransport
    {
        public void Send(ReadOnlySpan<byte> datagram) { }
        public byte[]? Receive(TimeSpan timeout) { Thread.Sleep(timeout < TimeSpan.FromMilliseconds(50) ? timeout : TimeSpan.FromMilliseconds(50)); return null; }
        public void Dispose() { }
    }

    sealed class FakeDhcpServer(PhysicalAddress mac) : IDhcpTransport
    {
        readonly Queue<byte[]> pending = new();
        public List<DhcpMessageType> Seen { get; } = [];

        public void Send(ReadOnlySpan<byte> datagram)
        {
            var type = (DhcpMessageType)datagram[242];      // option 53 is first
            uint xid = BinaryPrimitives.ReadUInt32BigEndian(datagram[4..]);
            Seen.Add(type);
            var offered = IPAddress.Parse("10.99.0.50");
            (byte, byte[])[] options = [(1, [255, 255, 255, 0]), (3, [10, 99, 0, 1]), (54, [10, 99, 0, 1]), (51, [0, 0, 1, 0])];
            pending.Enqueue([1, 2, 3]);                                                         // garbage: dropped
            pending.Enqueue(Reply(DhcpMessageType.Offer, xid + 1, mac, offered, options));      // another transaction
            pending.Enqueue(Reply(type == DhcpMessageType.Discover ? DhcpMessageType.Offer : DhcpMessageType.Ack, xid, mac, offered, options));
        }

        public byte[]? Receive(TimeSpan timeout) => pending.Count > 0 ? pending.Dequeue() : null;

        public void Dispose() { }
    }
}

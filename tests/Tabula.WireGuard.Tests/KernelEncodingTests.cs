using System.Buffers.Binary;
using System.Net;
using Tabula.Linux.Netlink;
using Tabula.Linux.Netlink.Generic;
using Tabula.WireGuard.Kernel;
using Tabula.WireGuard.Keys;

namespace Tabula.WireGuard.Tests;

/// <summary>
/// WG_CMD_SET_DEVICE fragmentation and WG_CMD_GET_DEVICE decoding, checked by walking the bytes with the same rules
/// the kernel applies (include/uapi/linux/wireguard.h, drivers/net/wireguard/netlink.c).
/// </summary>
public sealed class KernelEncodingTests
{
    const ushort Family = 0x1c;

    static WireGuardKey Key(int i)
    {
        var bytes = new byte[32];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, i);
        bytes[31] = 0x77;
        return new WireGuardKey(bytes);
    }

    sealed record DecodedPeer(int Id, uint Flags, bool HasPsk, IPEndPoint? Endpoint, ushort? Keepalive, List<AllowedIp> Ips);
    sealed record DecodedMessage(ushort Type, ushort Flags, uint Seq, string? IfName, bool HasPrivateKey, ushort? Port, uint? DeviceFlags, List<DecodedPeer> Peers, int Length);

    static List<DecodedMessage> EncodeAll(DeviceUpdate update, int capacity)
    {
        var messages = new List<DecodedMessage>();
        var writer = new NetlinkMessageBuilder(capacity);
        using var encoder = new KernelSetEncoder("wg0", update);
        uint seq = 100;
        while (encoder.TryWriteNext(writer, Family))
            messages.Add(Decode(writer.Finish(seq++)));
        return messages;
    }

    static DecodedMessage Decode(ReadOnlySpan<byte> message)
    {
        Assert.Equal(message.Length, (int)BinaryPrimitives.ReadUInt32LittleEndian(message));
        ushort type = BinaryPrimitives.ReadUInt16LittleEndian(message[4..]);
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(message[6..]);
        uint seq = BinaryPrimitives.ReadUInt32LittleEndian(message[8..]);
        Assert.Equal(1, message[16]);   // WG_CMD_SET_DEVICE
        Assert.Equal(1, message[17]);   // version
        string? name = null; bool privateKey = false; ushort? port = null; uint? deviceFlags = null;
        var peers = new List<DecodedPeer>();
        var attributes = new AttributeReader(message[20..]);
        while (attributes.TryRead(out ushort attribute, out var value))
        {
            switch (attribute)
            {
                case 2: name = AttributeReader.ReadString(value, 15); break;
                case 3: privateKey = true; break;
                case 5: deviceFlags = AttributeReader.ReadUInt32(value); break;
                case 6: port = AttributeReader.ReadUInt16(value); break;
                case 8:
                    var list = new AttributeReader(value);
                    while (list.TryRead(out _, out var peer))
                        peers.Add(DecodePeer(peer));
                    break;
            }
        }
        return new DecodedMessage(type, flags, seq, name, privateKey, port, deviceFlags, peers, message.Length);
    }

    static DecodedPeer DecodePeer(ReadOnlySpan<byte> data)
    {
        int id = -1; uint flags = 0; bool psk = false; IPEndPoint? endpoint = null; ushort? keepalive = null;
        var ips = new List<AllowedIp>();
        var attributes = new AttributeReader(data);
        while (attributes.TryRead(out ushort type, out var value))
        {
            switch (type)
            {
                case 1: id = BinaryPrimitives.ReadInt32LittleEndian(AttributeReader.Exact(value, 32)); break;
                case 2: psk = true; break;
                case 3: flags = AttributeReader.ReadUInt32(value); break;
                case 4:
                    ushort family = BinaryPrimitives.ReadUInt16LittleEndian(value);
                    int port = BinaryPrimitives.ReadUInt16BigEndian(value[2..]);
                    endpoint = family == 2
                        ? new IPEndPoint(new IPAddress(value.Slice(4, 4)), port)
                        : new IPEndPoint(new IPAddress(value.Slice(8, 16)), port);
                    break;
                case 5: keepalive = AttributeReader.ReadUInt16(value); break;
                case 9:
                    var list = new AttributeReader(value);
                    while (list.TryRead(out _, out var entry))
                    {
                        var ip = new AttributeReader(entry);
                        ushort fam = 0; byte[] address = []; byte cidr = 0;
                        while (ip.TryRead(out ushort t, out var v))
                        {
                            if (t == 1) fam = AttributeReader.ReadUInt16(v);
                            if (t == 2) address = v.ToArray();
                            if (t == 3) cidr = AttributeReader.ReadByte(v);
                        }
                        Assert.Equal(fam == 2 ? 4 : 16, address.Length);
                        ips.Add(new AllowedIp(new IPAddress(address), cidr));
                    }
                    break;
            }
        }
        return new DecodedPeer(id, flags, psk, endpoint, keepalive, ips);
    }

    static AllowedIp Ip(int i) => new(new IPAddress(new byte[] { 10, (byte)(i >> 16), (byte)(i >> 8), (byte)i }), 32);

    [Fact]
    public void Device_only_update_is_one_acked_request_with_the_device_attributes()
    {
        using var key = WireGuardKey.GeneratePrivateKey();
        var messages = EncodeAll(new DeviceUpdate { PrivateKey = key, ListenPort = 51820 }, 32768);
        var message = Assert.Single(messages);
        Assert.Equal(Family, message.Type);
        Assert.Equal(0x1 | 0x4, message.Flags);      // NLM_F_REQUEST | NLM_F_ACK
        Assert.Equal("wg0", message.IfName);
        Assert.True(message.HasPrivateKey);
        Assert.Equal((ushort)51820, message.Port);
        Assert.Null(message.DeviceFlags);
        Assert.Empty(message.Peers);
    }

    [Fact]
    public void Ten_thousand_peers_split_across_messages_with_replace_peers_and_device_fields_only_in_the_first()
    {
        using var key = WireGuardKey.GeneratePrivateKey();
        var keys = Enumerable.Range(0, 10_000).Select(Key).ToArray();
        var update = new DeviceUpdate
        {
            PrivateKey = key, ListenPort = 7, ReplacePeers = true,
            Peers = keys.Select((k, i) => new PeerUpdate { PublicKey = k, AllowedIps = [Ip(i)] }),
        };
        var messages = EncodeAll(update, 32768);
        Assert.True(messages.Count > 20, $"{messages.Count} messages");   // ~450 peers with one IPv4 each per 32 KiB
        Assert.All(messages, m => Assert.True(m.Length <= 32768));
        Assert.All(messages, m => Assert.Equal("wg0", m.IfName));
        Assert.Equal(1u, messages[0].DeviceFlags);
        Assert.True(messages[0].HasPrivateKey);
        Assert.All(messages.Skip(1), m => Assert.True(m.DeviceFlags is null && !m.HasPrivateKey && m.Port is null));
        var peers = messages.SelectMany(m => m.Peers).ToList();
        Assert.Equal(Enumerable.Range(0, 10_000), peers.Select(p => p.Id));
        Assert.All(peers, p => Assert.Equal(Ip(p.Id), Assert.Single(p.Ips)));
        foreach (var k in keys) k.Dispose();
    }

    [Fact]
    public void A_peer_with_more_allowed_ips_than_fit_continues_with_replace_only_in_its_first_fragment()
    {
        using var a = Key(1);
        using var b = Key(2);
        var ips = Enumerable.Range(0, 3000).Select(Ip).ToArray();
        var messages = EncodeAll(new DeviceUpdate
        {
            Peers =
            [
                new PeerUpdate { PublicKey = a, ReplaceAllowedIps = true, UpdateOnly = true, PersistentKeepaliveInterval = 25, AllowedIps = ips },
                new PeerUpdate { PublicKey = b, AllowedIps = [Ip(9)] },
            ],
        }, 32768);
        Assert.True(messages.Count >= 3, $"{messages.Count} messages");
        var fragments = messages.SelectMany(m => m.Peers).Where(p => p.Id == 1).ToList();
        Assert.True(fragments.Count >= 3);
        Assert.Equal(2u | 4u, fragments[0].Flags);                   // REPLACE_ALLOWEDIPS | UPDATE_ONLY
        Assert.Equal((ushort)25, fragments[0].Keepalive);
        Assert.All(fragments.Skip(1), f => Assert.Equal(4u, f.Flags));   // UPDATE_ONLY repeated, REPLACE not
        Assert.All(fragments.Skip(1), f => Assert.Null(f.Keepalive));
        Assert.Equal(ips, fragments.SelectMany(f => f.Ips));
        Assert.Equal(2, messages.SelectMany(m => m.Peers).Last().Id);
    }

    [Fact]
    public void Peer_fields_are_encoded_as_the_kernel_expects()
    {
        using var peer = Key(5);
        using var psk = WireGuardKey.GeneratePresharedKey();
        var messages = EncodeAll(new DeviceUpdate
        {
            Peers =
            [
                new PeerUpdate { PublicKey = peer, PresharedKey = psk, Endpoint = IPEndPoint.Parse("192.0.2.7:51820") },
                new PeerUpdate { PublicKey = peer, Endpoint = IPEndPoint.Parse("[2001:db8::1]:443") },
                PeerUpdate.RemovePeer(peer),
            ],
        }, 32768);
        var peers = Assert.Single(messages).Peers;
        Assert.True(peers[0].HasPsk);
        Assert.Equal(IPEndPoint.Parse("192.0.2.7:51820"), peers[0].Endpoint);
        Assert.Equal(IPEndPoint.Parse("[2001:db8::1]:443"), peers[1].Endpoint);
        Assert.Equal(1u, peers[2].Flags);   // WGPEER_F_REMOVE_ME
    }

    [Fact]
    public void Peers_are_enumerated_lazily_one_message_at_a_time()
    {
        int produced = 0;
        IEnumerable<PeerUpdate> Generate()
        {
            for (int i = 0; i < 100_000; i++)
            {
                produced++;
                yield return new PeerUpdate { PublicKey = Key(i), AllowedIps = [Ip(i)] };
            }
        }
        var writer = new NetlinkMessageBuilder(32768);
        using var encoder = new KernelSetEncoder("wg0", new DeviceUpdate { Peers = Generate() });
        Assert.True(encoder.TryWriteNext(writer, Family));
        Assert.InRange(produced, 100, 500);
    }

    // A dump reply as the kernel would send it: peer 1 split over two messages, the second without device fields.
    [Fact]
    public void Get_dump_coalesces_a_peer_split_across_messages()
    {
        using var device = WireGuardKey.GeneratePrivateKey();
        using var publicKey = device.DerivePublicKey();
        using var peer = Key(1);
        using var other = Key(2);
        using var decoder = new KernelGetDecoder();

        var w = new NetlinkMessageBuilder(4096);
        w.Reset(Family, NetlinkMessageFlags.Multi);
        GenericNetlink.AppendHeader(w, 0, 1);
        w.AddString(2, "wg0");
        w.AddAttribute(3, device.Bytes);
        w.AddAttribute(4, publicKey.Bytes);
        w.AddUInt16(6, 51820);
        int peers = w.BeginNested(8);
        int p = w.BeginNested(0);
        w.AddAttribute(1, peer.Bytes);
        w.AddAttribute(2, new byte[32]);
        var handshake = new byte[16];
        BinaryPrimitives.WriteInt64LittleEndian(handshake, 1_700_000_000);
        BinaryPrimitives.WriteInt64LittleEndian(handshake.AsSpan(8), 5_000);
        w.AddAttribute(6, handshake);
        var rx = new byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(rx, 228); w.AddAttribute(7, rx);
        var tx = new byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(tx, 172); w.AddAttribute(8, tx);
        int ipsNest = w.BeginNested(9);
        WriteIp(w, Ip(1));
        w.EndNested(ipsNest);
        w.EndNested(p);
        w.EndNested(peers);
        decoder.Accept(w.Finish(1)[16..].ToArray());

        w.Reset(Family, NetlinkMessageFlags.Multi);
        GenericNetlink.AppendHeader(w, 0, 1);
        w.AddString(2, "wg0");
        peers = w.BeginNested(8);
        p = w.BeginNested(0);
        w.AddAttribute(1, peer.Bytes);
        ipsNest = w.BeginNested(9);
        WriteIp(w, Ip(2));
        w.EndNested(ipsNest);
        w.EndNested(p);
        p = w.BeginNested(0);
        w.AddAttribute(1, other.Bytes);
        w.EndNested(p);
        w.EndNested(peers);
        decoder.Accept(w.Finish(1)[16..].ToArray());

        using var state = decoder.ToDeviceState("wg0");
        Assert.Equal(device, state.PrivateKey);
        Assert.Equal(publicKey, state.PublicKey);
        Assert.Equal(51820, state.ListenPort);
        Assert.Equal(2, state.Peers.Count);
        Assert.Equal([Ip(1), Ip(2)], state.Peers[0].AllowedIps);
        Assert.Null(state.Peers[0].PresharedKey);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000).AddTicks(50), state.Peers[0].LastHandshake);
        Assert.Equal(228UL, state.Peers[0].ReceiveBytes);
        Assert.Equal(172UL, state.Peers[0].TransmitBytes);
        Assert.Null(state.Peers[1].LastHandshake);
    }

    static void WriteIp(NetlinkMessageBuilder w, AllowedIp ip)
    {
        int n = w.BeginNested(0);
        w.AddUInt16(1, 2);
        w.AddAttribute(2, ip.Address.GetAddressBytes());
        w.AddByte(3, ip.Cidr);
        w.EndNested(n);
    }

    // The attribute walker itself is Tabula.Linux's (tested there); the decoder reports its refusals in WireGuard terms.
    [Theory]
    [InlineData(new byte[] { 3, 0 })]                          // header truncated
    [InlineData(new byte[] { 3, 0, 1, 0 })]                    // length below the header
    [InlineData(new byte[] { 9, 0, 1, 0, 1, 2, 3, 4 })]        // length past the end
    public void Get_decoder_refuses_malformed_attributes_as_a_protocol_error(byte[] attributes)
    {
        using var decoder = new KernelGetDecoder();
        var e = Assert.Throws<WireGuardProtocolException>(() => decoder.Accept([0, 1, 0, 0, .. attributes]));
        Assert.Equal(ProtocolError.MalformedMessage, e.Reason);
        Assert.IsType<Tabula.Linux.KernelDataException>(e.InnerException);
    }

    [Fact]
    public void Get_decoder_refuses_a_port_of_the_wrong_size()
    {
        var w = new NetlinkMessageBuilder(256);
        w.Reset(Family, NetlinkMessageFlags.Multi);
        GenericNetlink.AppendHeader(w, 0, 1);
        w.AddAttribute(6, [1, 2, 3]);
        using var decoder = new KernelGetDecoder();
        Assert.Equal(ProtocolError.AttributeSize,
            Assert.Throws<WireGuardProtocolException>(() => decoder.Accept(w.Finish(1)[16..].ToArray())).Reason);
    }

    [Fact]
    public void Get_decoder_refuses_a_key_of_the_wrong_size()
    {
        var w = new NetlinkMessageBuilder(256);
        w.Reset(Family, NetlinkMessageFlags.Multi);
        GenericNetlink.AppendHeader(w, 0, 1);
        w.AddAttribute(3, new byte[31]);
        using var decoder = new KernelGetDecoder();
        Assert.Equal(ProtocolError.AttributeSize,
            Assert.Throws<WireGuardProtocolException>(() => decoder.Accept(w.Finish(1)[16..].ToArray())).Reason);
    }
}

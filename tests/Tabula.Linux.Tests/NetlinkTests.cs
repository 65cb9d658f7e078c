using System.Net;
using Tabula.Linux.Netlink;
using Tabula.Linux.Netlink.Route;

namespace Tabula.Linux.Tests;

public sealed class NetlinkTests
{
    [Fact]
    public void Add_address_request_matches_the_reference_bytes()
    {
        // linux-boot-interfaces.md §6: RTM_NEWADDR for ifindex 2, seq 1, 192.0.2.10/24.
        byte[] expected = Convert.FromHexString(
            "28000000" + "1400" + "0506" + "01000000" + "00000000" +
            "02180000" + "02000000" +
            "08000200" + "c000020a" +
            "08000100" + "c000020a");
        var request = RouteSocket.BuildAddAddress(2, IPAddress.Parse("192.0.2.10"), 24);
        Assert.Equal(expected, request.Finish(1).ToArray());
    }

    [Fact]
    public void Attribute_reader_strips_the_nested_flag_and_pads_to_four()
    {
        var builder = new NetlinkMessageBuilder(1, NetlinkMessageFlags.Request);
        int nest = builder.BeginNested(7);
        builder.AddString(3, "eth0");
        builder.AddUInt32(4, 1500);
        builder.EndNested(nest);
        ReadOnlySpan<byte> attributes = builder.Finish(1)[NetlinkHeader.Size..];

        var outer = new AttributeReader(attributes);
        Assert.True(outer.TryRead(out ushort type, out ReadOnlySpan<byte> nested));
        Assert.Equal(7, type);
        var inner = new AttributeReader(nested);
        Assert.True(inner.TryRead(out type, out ReadOnlySpan<byte> name));
        Assert.Equal((3, "eth0"), (type, AttributeReader.ReadString(name)));
        Assert.True(inner.TryRead(out type, out ReadOnlySpan<byte> mtu));
        Assert.Equal((4, 1500u), (type, AttributeReader.ReadUInt32(mtu)));
        Assert.False(inner.TryRead(out _, out _));
        Assert.False(outer.TryRead(out _, out _));
    }

    [Fact]
    public void Attribute_reader_refuses_a_length_past_its_container()
    {
        byte[] attribute = [0x20, 0x00, 0x03, 0x00, 0x65, 0x74, 0x68, 0x00];
        var e = Assert.Throws<KernelDataException>(() =>
        {
            var reader = new AttributeReader(attribute);
            reader.TryRead(out _, out _);
        });
        Assert.Equal(KernelDataError.NetlinkAttributeTruncated, e.Reason);
    }

    [Fact]
    public void Attribute_reader_refuses_a_u32_of_the_wrong_size()
    {
        var e = Assert.Throws<KernelDataException>(() => AttributeReader.ReadUInt32([1, 2, 3]));
        Assert.Equal(KernelDataError.NetlinkAttributeSize, e.Reason);
    }

    [Fact]
    public void String_attribute_without_nul_is_refused() =>
        Assert.Equal(KernelDataError.NetlinkAttributeSize,
            Assert.Throws<KernelDataException>(() => AttributeReader.ReadString("eth0"u8)).Reason);

    [Theory]
    [InlineData("0a000000")]                          // shorter than a header
    [InlineData("40000000010000000100000000000000")]  // claims 64 bytes, has 16
    [InlineData("08000000010000000100000000000000")]  // claims less than a header
    public void Message_reader_refuses_bad_lengths(string hex)
    {
        byte[] datagram = Convert.FromHexString(hex);
        var e = Assert.Throws<KernelDataException>(() =>
        {
            var reader = new NetlinkMessageReader(datagram);
            reader.TryRead(out _);
        });
        Assert.Equal(KernelDataError.NetlinkMessageTruncated, e.Reason);
    }

    [Fact]
    public void Link_message_is_parsed_with_name_mac_state_and_mtu()
    {
        var builder = new NetlinkMessageBuilder(16, NetlinkMessageFlags.None);
        Span<byte> info = builder.AppendFamilyHeader(16);
        info[4] = 3;                                   // index 3
        info[8] = 0x43;                                // UP|BROADCAST|RUNNING
        info[10] = 0x01;                               // LOWER_UP
        builder.AddString(3, "eth0");
        builder.AddAttribute(1, [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        builder.AddAttribute(16, [6]);
        builder.AddUInt32(4, 1500);
        Link link = RouteSocket.ParseLink(builder.Finish(1)[NetlinkHeader.Size..]);
        Assert.Equal(3, link.Index);
        Assert.Equal("eth0", link.Name);
        Assert.Equal("525400123456", link.HardwareAddress!.ToString());
        Assert.Equal(LinkOperationalState.Up, link.OperationalState);
        Assert.True(link.HasCarrier);
        Assert.Equal(1500u, link.Mtu);
    }

    [Fact]
    public void Truncated_ifinfomsg_is_refused() =>
        Assert.Equal(KernelDataError.NetlinkHeaderTruncated,
            Assert.Throws<KernelDataException>(() => RouteSocket.ParseLink(new byte[8])).Reason);

    [Fact]
    public void Create_link_request_carries_the_name_and_a_nested_kind()
    {
        ReadOnlySpan<byte> message = RouteSocket.BuildCreateLink("wg0", LinkKind.WireGuard).Finish(1);
        Assert.Equal(0x0605, BitConverter.ToUInt16(message[6..8]));   // REQUEST|ACK|EXCL|CREATE
        var attributes = new AttributeReader(message[(NetlinkHeader.Size + 16)..]);
        Assert.True(attributes.TryRead(out ushort type, out ReadOnlySpan<byte> name));
        Assert.Equal((3, "wg0"), (type, AttributeReader.ReadString(name)));
        Assert.True(attributes.TryRead(out type, out ReadOnlySpan<byte> linkInfo));
        Assert.Equal(18, type);
        var nested = new AttributeReader(linkInfo);
        Assert.True(nested.TryRead(out type, out ReadOnlySpan<byte> kind));
        Assert.Equal((1, "wireguard"), (type, AttributeReader.ReadString(kind)));
        Assert.False(attributes.TryRead(out _, out _));
    }

    [Theory]
    [InlineData("")]
    [InlineData("sixteen-chars-xx")]
    [InlineData("a/b")]
    [InlineData("a b")]
    public void Create_link_refuses_names_the_kernel_would_refuse(string name) =>
        Assert.ThrowsAny<ArgumentException>(() => RouteSocket.BuildCreateLink(name, LinkKind.Dummy));

    [Fact]
    public void Builder_reset_reuses_its_buffer_and_tracks_what_remains()
    {
        var builder = new NetlinkMessageBuilder(64);
        builder.Reset(20, NetlinkMessageFlags.Request);
        Assert.Equal((16, 48), (builder.Length, builder.Remaining));
        builder.AddUInt16(1, 7);
        Assert.Equal(16 + NetlinkMessageBuilder.AttributeSize(2), builder.Length);
        builder.Reset(21, NetlinkMessageFlags.Request);
        Assert.Equal((ushort)21, builder.Type);
        Assert.Equal(16, builder.Finish(9).Length);
        Assert.Equal(NetlinkMessageBuilder.AttributeSize(4), NetlinkMessageBuilder.StringAttributeSize("eth"));
    }

    [Fact]
    public void Builder_refuses_to_grow_past_its_capacity_and_zeroes_on_request()
    {
        var builder = new NetlinkMessageBuilder(32);
        builder.Reset(1, NetlinkMessageFlags.Request);
        builder.AddAttribute(1, [1, 2, 3, 4, 5, 6, 7, 8]);
        Assert.Throws<InvalidOperationException>(() => builder.AddUInt32(2, 1));
        builder.ZeroBuffer();
        Assert.Equal(0, builder.Length);
        builder.Reset(1, NetlinkMessageFlags.None);
        Assert.Equal(16, builder.Finish(0).Length);
    }

    [Fact]
    public void Typed_accessors_read_the_widths_and_byte_orders_they_name()
    {
        Assert.Equal(0x0102030405060708UL, AttributeReader.ReadUInt64([8, 7, 6, 5, 4, 3, 2, 1]));
        Assert.Equal(0x01020304u, AttributeReader.ReadUInt32BigEndian([1, 2, 3, 4]));
        Assert.Equal((ushort)0x0201, AttributeReader.ReadUInt16([1, 2]));
        Assert.Equal(KernelDataError.NetlinkAttributeSize,
            Assert.Throws<KernelDataException>(() => AttributeReader.ReadString("abcdef\0"u8, 3)).Reason);
    }

    /// <summary>Found by fuzzing (tests/Tabula.Fuzz corpus RouteNetlink/rtnl_bad_ipv4_prefix_252.bin).</summary>
    [Theory]
    [InlineData(2, 4, 33)]
    [InlineData(2, 4, 252)]
    [InlineData(10, 16, 129)]
    public void Address_with_a_prefix_longer_than_its_family_is_refused(byte family, int size, byte prefixLength)
    {
        byte[] payload = AddressPayload(family, size, prefixLength);
        var e = Assert.Throws<KernelDataException>(() => RouteSocket.ParseAddress(payload));
        Assert.Equal(KernelDataError.NetlinkValueOutOfRange, e.Reason);
    }

    [Theory]
    [InlineData(2, 4, 32)]
    [InlineData(10, 16, 128)]
    public void Address_with_a_full_length_prefix_is_accepted(byte family, int size, byte prefixLength) =>
        Assert.Equal(prefixLength, RouteSocket.ParseAddress(AddressPayload(family, size, prefixLength))!.PrefixLength);

    /// <summary>An RTM_NEWADDR payload (ifaddrmsg and IFA_LOCAL) for interface 2.</summary>
    static byte[] AddressPayload(byte family, int size, byte prefixLength)
    {
        var builder = new NetlinkMessageBuilder(20, NetlinkMessageFlags.None);
        Span<byte> header = builder.AppendFamilyHeader(8);
        header[0] = family;
        header[1] = prefixLength;
        header[4] = 2;
        builder.AddAttribute(2, new byte[size]);
        return builder.Finish(1)[NetlinkHeader.Size..].ToArray();
    }
}

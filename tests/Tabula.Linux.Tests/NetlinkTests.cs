using System.Net;
using Tabula.Linux.Netlink;

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
}

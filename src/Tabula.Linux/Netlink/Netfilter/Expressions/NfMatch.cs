using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Tabula.Linux.Netlink.Netfilter.Expressions;

/// <summary>
/// Expression sequences for the matches nft spells in one word, built the way nft builds them so that
/// <c>nft list ruleset</c> reads them back as the same words.
/// </summary>
public static class NfMatch
{
    /// <summary>IP protocol numbers used by the matches below.</summary>
    public const byte Tcp = 6, Udp = 17, Icmp = 1, IcmpV6 = 58;

    /// <summary>iifname "NAME" / oifname "NAME": the 16-byte, NUL-padded interface name.</summary>
    public static NfExpression[] InterfaceName(NfMetaKey key, string name)
    {
        if (key is not (NfMetaKey.InputInterfaceName or NfMetaKey.OutputInterfaceName))
            throw new ArgumentException("an interface name match uses iifname or oifname");
        byte[] padded = new byte[16];
        if (name.Length is 0 or > 15 || Encoding.ASCII.GetBytes(name, padded) != name.Length)
            throw new ArgumentException("an interface name is 1 to 15 ASCII characters");
        return [new NfMeta(key), new NfCmp(NfCmpOperator.Equal, padded)];
    }

    /// <summary>meta nfproto ipv4|ipv6.</summary>
    public static NfExpression[] Family(AddressFamily family) =>
        [new NfMeta(NfMetaKey.NfProto), new NfCmp(NfCmpOperator.Equal, [(byte)ToNfFamily(family)])];

    /// <summary>meta l4proto N.</summary>
    public static NfExpression[] L4Proto(byte protocol) =>
        [new NfMeta(NfMetaKey.L4Proto), new NfCmp(NfCmpOperator.Equal, [protocol])];

    /// <summary>ip saddr/daddr or ip6 saddr/daddr loaded into a register (the family must already be matched).</summary>
    public static NfPayload Address(AddressFamily family, bool source, NfRegister destination = NfRegister.R1) => family switch
    {
        AddressFamily.InterNetwork => new NfPayload(NfPayloadBase.Network, source ? 12u : 16u, 4, destination),
        AddressFamily.InterNetworkV6 => new NfPayload(NfPayloadBase.Network, source ? 8u : 24u, 16, destination),
        _ => throw new ArgumentException($"address family {family} is not IPv4 or IPv6"),
    };

    /// <summary>ip daddr ADDRESS (or saddr), family matched first.</summary>
    public static NfExpression[] AddressEquals(IPAddress address, bool source) =>
        [.. Family(address.AddressFamily), Address(address.AddressFamily, source), new NfCmp(NfCmpOperator.Equal, address.GetAddressBytes())];

    /// <summary>ip saddr @SET (or daddr), family matched first.</summary>
    public static NfExpression[] AddressInSet(AddressFamily family, bool source, string set, bool invert = false) =>
        [.. Family(family), Address(family, source), new NfLookup(set, Invert: invert)];

    /// <summary>th dport N: the destination port of TCP or UDP (the protocol must already be matched).</summary>
    public static NfExpression[] DestinationPort(ushort port) =>
        [new NfPayload(NfPayloadBase.Transport, 2, 2), new NfCmp(NfCmpOperator.Equal, [(byte)(port >> 8), (byte)port])];

    /// <summary>ct state in STATES: (state &amp; bits) != 0.</summary>
    public static NfExpression[] ConntrackState(NfCtState states)
    {
        byte[] mask = BitConverter.GetBytes((uint)states);   // the kernel keeps ct state in host order
        return [new NfCt(NfCtKey.State), new NfBitwise(4, mask, new byte[4]), new NfCmp(NfCmpOperator.NotEqual, new byte[4])];
    }

    /// <summary>
    /// tcp flags syn tcp option maxseg size set rt mtu: on a forwarded SYN, clamp the MSS option to what the route's
    /// path MTU allows (rt mtu loads it in host order, byteorder turns it around for the header).
    /// </summary>
    public static NfExpression[] ClampMssToPathMtu() =>
    [
        .. L4Proto(Tcp),
        new NfPayload(NfPayloadBase.Transport, 13, 1),
        new NfBitwise(1, [0x02], [0x00]),
        new NfCmp(NfCmpOperator.NotEqual, [0x00]),
        new NfRt(NfRtKey.TcpMss),
        new NfByteorder(NfByteorderOperator.HostToNetwork, 2, 2),
        new NfTcpOptionWrite(OptionKind: 2, Offset: 2, Length: 2),
    ];

    /// <summary>The NFPROTO number of an address family.</summary>
    public static NfTablesFamily ToNfFamily(AddressFamily family) => family switch
    {
        AddressFamily.InterNetwork => NfTablesFamily.IPv4,
        AddressFamily.InterNetworkV6 => NfTablesFamily.IPv6,
        _ => throw new ArgumentException($"address family {family} is not IPv4 or IPv6"),
    };
}

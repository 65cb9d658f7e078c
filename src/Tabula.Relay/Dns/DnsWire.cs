using System.Buffers.Binary;

namespace Tabula.Relay.Dns;

/// <summary>RFC 1035 / 2308 / 6891 constants and header access; one owner of the header layout.</summary>
internal static class DnsWire
{
    public const ushort TypeSoa = 6;
    public const ushort TypeOpt = 41;
    public const ushort TypeIxfr = 251;
    public const ushort TypeAxfr = 252;
    public const ushort ClassIn = 1;

    // Header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2 for AD and CD).
    public const ushort FlagQr = 0x8000;
    public const ushort FlagAa = 0x0400;
    public const ushort FlagTc = 0x0200;
    public const ushort FlagRd = 0x0100;
    public const ushort FlagRa = 0x0080;
    public const ushort FlagAd = 0x0020;
    public const ushort FlagCd = 0x0010;
    public const ushort OpcodeMask = 0x7800;
    public const ushort RcodeMask = 0x000F;

    /// <summary>RFC 3225: DNSSEC OK, in the OPT record's TTL field.</summary>
    public const uint EdnsDo = 0x8000;

    /// <summary>RFC 7871 client subnet and RFC 7873 cookie: never forwarded (one leaks a client, the other is per server pair).</summary>
    public const ushort OptionClientSubnet = 8;
    public const ushort OptionCookie = 10;

    public static ushort Id(ReadOnlySpan<byte> m) => BinaryPrimitives.ReadUInt16BigEndian(m);
    public static ushort Flags(ReadOnlySpan<byte> m) => BinaryPrimitives.ReadUInt16BigEndian(m[2..]);
    public static ushort QdCount(ReadOnlySpan<byte> m) => BinaryPrimitives.ReadUInt16BigEndian(m[4..]);
    public static ushort AnCount(ReadOnlySpan<byte> m) => BinaryPrimitives.ReadUInt16BigEndian(m[6..]);
    public static ushort NsCount(ReadOnlySpan<byte> m) => BinaryPrimitives.ReadUInt16BigEndian(m[8..]);
    public static ushort ArCount(ReadOnlySpan<byte> m) => BinaryPrimitives.ReadUInt16BigEndian(m[10..]);

    public static void WriteHeader(Span<byte> m, ushort id, ushort flags, ushort qd, ushort an, ushort ns, ushort ar)
    {
        BinaryPrimitives.WriteUInt16BigEndian(m, id);
        BinaryPrimitives.WriteUInt16BigEndian(m[2..], flags);
        BinaryPrimitives.WriteUInt16BigEndian(m[4..], qd);
        BinaryPrimitives.WriteUInt16BigEndian(m[6..], an);
        BinaryPrimitives.WriteUInt16BigEndian(m[8..], ns);
        BinaryPrimitives.WriteUInt16BigEndian(m[10..], ar);
    }
}

/// <summary>Response codes the forwarder writes itself (RFC 1035 §4.1.1, RFC 6891 §9 for BADVERS).</summary>
public enum DnsRcode
{
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NxDomain = 3,
    NotImp = 4,
    Refused = 5,
    BadVers = 16,
}

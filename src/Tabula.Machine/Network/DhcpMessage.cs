using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;

namespace Tabula.Machine.Network;

/// <summary>DHCP message types (RFC 2132 option 53).</summary>
internal enum DhcpMessageType : byte
{
    Discover = 1, Offer = 2, Request = 3, Decline = 4, Ack = 5, Nak = 6, Release = 7, Inform = 8,
}

/// <summary>A classless static route (RFC 3442).</summary>
internal sealed record DhcpRoute(IPAddress Destination, int PrefixLength, IPAddress Router);

/// <summary>
/// A parsed DHCP reply: the fields and options a boot loader uses (RFC 2131 §2, RFC 2132, RFC 3442). Unknown
/// options are skipped; every length is checked against the datagram, so random bytes give a value or a
/// <see cref="DhcpException"/>, nothing else.
/// </summary>
internal sealed record DhcpMessage
{
    public const int FixedHeaderBytes = 236;
    const uint MagicCookie = 0x63825363;

    public required DhcpMessageType Type { get; init; }
    public required uint TransactionId { get; init; }
    public required PhysicalAddress ClientHardwareAddress { get; init; }
    public required IPAddress YourAddress { get; init; }
    public IPAddress? SubnetMask { get; init; }
    public IReadOnlyList<IPAddress> Routers { get; init; } = [];
    public IReadOnlyList<IPAddress> DnsServers { get; init; } = [];
    public IReadOnlyList<DhcpRoute> ClasslessRoutes { get; init; } = [];
    public IPAddress? ServerIdentifier { get; init; }
    public uint? LeaseSeconds { get; init; }

    /// <summary>Prefix length from the subnet mask (counting leading one bits), 24 when the server sent none.</summary>
    public int PrefixLength
    {
        get
        {
            if (SubnetMask is null)
                return 24;
            uint mask = BinaryPrimitives.ReadUInt32BigEndian(SubnetMask.GetAddressBytes());
            return System.Numerics.BitOperations.LeadingZeroCount(~mask);
        }
    }

    /// <summary>The default gateway: the 0/0 classless route when option 121 is present (RFC 3442: then ignore
    /// option 3), else the first router.</summary>
    public IPAddress? DefaultGateway =>
        ClasslessRoutes.Count > 0
            ? ClasslessRoutes.FirstOrDefault(r => r.PrefixLength == 0)?.Router
            : Routers.FirstOrDefault();

    /// <summary>Parses a reply from a server (op 2, Ethernet).</summary>
    public static DhcpMessage Parse(ReadOnlySpan<byte> datagram)
    {
        if (datagram.Length > MachineLimits.MaxDhcpMessageBytes)
            DhcpException.Throw(DhcpError.TooLarge, $"{datagram.Length} bytes");
        if (datagram.Length < FixedHeaderBytes + 4)
            DhcpException.Throw(DhcpError.Truncated, $"{datagram.Length} bytes");
        if (datagram[0] != 2 || datagram[1] != 1 || datagram[2] != 6)
            DhcpException.Throw(DhcpError.NotAReply, $"op={datagram[0]} htype={datagram[1]} hlen={datagram[2]}");
        if (BinaryPrimitives.ReadUInt32BigEndian(datagram[FixedHeaderBytes..]) != MagicCookie)
            DhcpException.Throw(DhcpError.BadMagicCookie, "no 63 82 53 63 after the fixed header");

        uint xid = BinaryPrimitives.ReadUInt32BigEndian(datagram[4..]);
        var yiaddr = new IPAddress(datagram.Slice(16, 4));
        var chaddr = new PhysicalAddress(datagram.Slice(28, 6).ToArray());

        DhcpMessageType? type = null;
        IPAddress? mask = null, server = null;
        uint? lease = null;
        var routers = new List<IPAddress>();
        var dns = new List<IPAddress>();
        var routes = new List<DhcpRoute>();

        var options = datagram[(FixedHeaderBytes + 4)..];
        int i = 0;
        while (i < options.Length)
        {
            byte code = options[i++];
            if (code == 0)
                continue;       // pad
            if (code == 255)
                break;          // end
            if (i >= options.Length)
                DhcpException.Throw(DhcpError.OptionOverrun, $"option {code} has no length byte");
            int length = options[i++];
            if (i + length > options.Length)
                DhcpException.Throw(DhcpError.OptionOverrun, $"option {code} claims {length} bytes, {options.Length - i} left");
            var value = options.Slice(i, length);
            i += length;
            switch (code)
            {
                case 53:
                    Expect(code, value, 1);
                    type = (DhcpMessageType)value[0];
                    break;
                case 1:
                    Expect(code, value, 4);
                    mask = new IPAddress(value);
                    break;
                case 3:
                    routers.AddRange(Addresses(code, value));
                    break;
                case 6:
                    dns.AddRange(Addresses(code, value));
                    break;
                case 54:
                    Expect(code, value, 4);
                    server = new IPAddress(value);
                    break;
                case 51:
                    Expect(code, value, 4);
                    lease = BinaryPrimitives.ReadUInt32BigEndian(value);
                    break;
                case 121:
                    routes.AddRange(ClasslessRoutesOf(value));
                    break;
            }
        }
        if (type is null)
            DhcpException.Throw(DhcpError.MissingMessageType, "no option 53");
        return new DhcpMessage
        {
            Type = type.Value, TransactionId = xid, ClientHardwareAddress = chaddr, YourAddress = yiaddr,
            SubnetMask = mask, Routers = routers, DnsServers = dns, ClasslessRoutes = routes,
            ServerIdentifier = server, LeaseSeconds = lease,
        };
    }

    static void Expect(byte code, ReadOnlySpan<byte> value, int length)
    {
        if (value.Length != length)
            DhcpException.Throw(DhcpError.BadOptionLength, $"option {code} has {value.Length} bytes, wants {length}");
    }

    static List<IPAddress> Addresses(byte code, ReadOnlySpan<byte> value)
    {
        if (value.Length == 0 || value.Length % 4 != 0)
            DhcpException.Throw(DhcpError.BadOptionLength, $"option {code} has {value.Length} bytes, wants a multiple of 4");
        var list = new List<IPAddress>(value.Length / 4);
        for (int i = 0; i < value.Length; i += 4)
            list.Add(new IPAddress(value.Slice(i, 4)));
        return list;
    }

    // RFC 3442: width (0-32), the significant octets of the destination, then the 4-byte router.
    static List<DhcpRoute> ClasslessRoutesOf(ReadOnlySpan<byte> value)
    {
        var routes = new List<DhcpRoute>();
        Span<byte> destination = stackalloc byte[4];
        int i = 0;
        while (i < value.Length)
        {
            int width = value[i++];
            if (width > 32)
                DhcpException.Throw(DhcpError.BadClasslessRoute, $"prefix width {width}");
            int significant = (width + 7) / 8;
            if (i + significant + 4 > value.Length)
                DhcpException.Throw(DhcpError.BadClasslessRoute, "route runs past the option");
            destination.Clear();
            value.Slice(i, significant).CopyTo(destination);
            i += significant;
            routes.Add(new DhcpRoute(new IPAddress(destination), width, new IPAddress(value.Slice(i, 4))));
            i += 4;
        }
        return routes;
    }

    /// <summary>
    /// Builds a client message: DISCOVER, or REQUEST for <paramref name="requested"/> from <paramref name="server"/>
    /// (RFC 2131 §4.3.2, SELECTING state), or a renewal REQUEST with <paramref name="clientAddress"/> as ciaddr
    /// (§4.4.5). Broadcast flag set: the socket listens on the broadcast address, whatever address it has.
    /// </summary>
    public static byte[] BuildClient(DhcpMessageType type, uint xid, PhysicalAddress mac, ushort secondsElapsed,
        IPAddress? requested = null, IPAddress? server = null, IPAddress? clientAddress = null)
    {
        byte[] hardware = mac.GetAddressBytes();
        if (hardware.Length != 6)
            throw new ArgumentException("an Ethernet MAC has 6 bytes", nameof(mac));
        var message = new byte[300];     // padded to the BOOTP minimum for old servers
        message[0] = 1;                  // BOOTREQUEST
        message[1] = 1;                  // Ethernet
        message[2] = 6;
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(4), xid);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(8), secondsElapsed);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(10), 0x8000);   // broadcast reply
        clientAddress?.GetAddressBytes().CopyTo(message, 12);
        hardware.CopyTo(message, 28);
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(FixedHeaderBytes), MagicCookie);
        int i = FixedHeaderBytes + 4;
        void Option(byte code, ReadOnlySpan<byte> value)
        {
            message[i++] = code;
            message[i++] = (byte)value.Length;
            value.CopyTo(message.AsSpan(i));
            i += value.Length;
        }
        Option(53, [(byte)type]);
        Option(61, [1, .. hardware]);
        if (requested is not null)
            Option(50, requested.GetAddressBytes());
        if (server is not null)
            Option(54, server.GetAddressBytes());
        Option(57, [0x05, 0xDC]);                             // max message size 1500
        Option(55, [1, 3, 6, 15, 26, 51, 54, 58, 59, 121]);   // parameters we read (and what the reference lists)
        message[i] = 255;
        return message;
    }
}

using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace Tabula.Linux.Netlink.Route;

/// <summary>
/// rtnetlink operations for bringing a machine onto the network: list links, find one by name, create (e.g. of kind
/// <see cref="LinkKind.WireGuard"/>) and delete links, set one up, add an address, add a default route. Each call is
/// one request and one checked reply. Not thread-safe.
/// </summary>
/// <remarks>
/// Failure messages name the operation, interface index, family and prefix length, never the address itself.
/// </remarks>
public sealed class RouteSocket(NetlinkSocket socket) : IDisposable
{
    /// <summary>Opens a NETLINK_ROUTE socket in the calling thread's network namespace.</summary>
    public static RouteSocket Open() => new(NetlinkSocket.Open(NetlinkProtocol.Route));

    /// <summary>RTM_GETLINK dump: every interface with its index, name, MAC, flags and state.</summary>
    public IReadOnlyList<Link> GetLinks()
    {
        var request = new NetlinkMessageBuilder(Rtnetlink.GetLink, NetlinkMessageFlags.Request | NetlinkMessageFlags.Dump);
        request.AppendFamilyHeader(Rtnetlink.InterfaceInfoSize);
        var links = new List<Link>();
        socket.Dump(request, "RTM_GETLINK(dump)", message =>
        {
            if (message.Type == Rtnetlink.NewLink)
                links.Add(ParseLink(message.Payload));
        });
        return links;
    }

    /// <summary>RTM_GETADDR dump for one family (<see cref="AddressFamily.Unspecified"/> for both).</summary>
    public IReadOnlyList<InterfaceAddress> GetAddresses(AddressFamily family = AddressFamily.Unspecified)
    {
        var request = new NetlinkMessageBuilder(Rtnetlink.GetAddress, NetlinkMessageFlags.Request | NetlinkMessageFlags.Dump);
        request.AppendFamilyHeader(Rtnetlink.InterfaceAddressSize)[0] = ToKernelFamily(family);
        var addresses = new List<InterfaceAddress>();
        socket.Dump(request, "RTM_GETADDR(dump)", message =>
        {
            if (message.Type == Rtnetlink.NewAddress && ParseAddress(message.Payload) is { } address)
                addresses.Add(address);
        });
        return addresses;
    }

    /// <summary>RTM_GETLINK by IFLA_IFNAME: the interface named <paramref name="name"/>, or null when there is none.</summary>
    public Link? GetLink(string name)
    {
        ValidateName(name);
        var request = new NetlinkMessageBuilder(Rtnetlink.GetLink, NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack);
        request.AppendFamilyHeader(Rtnetlink.InterfaceInfoSize);
        request.AddString(Rtnetlink.IflaName, name);
        Link? link = null;
        try
        {
            socket.Request(request, $"RTM_GETLINK({name})", message =>
            {
                if (message.Type != Rtnetlink.NewLink)
                    KernelDataException.Throw(KernelDataError.NetlinkUnexpectedMessage, $"RTM_GETLINK({name}): message type {message.Type}");
                link = ParseLink(message.Payload);
            });
        }
        catch (LinuxException e) when (e.Errno == Errno.ENODEV)
        {
            return null;
        }
        return link;
    }

    /// <summary>
    /// RTM_NEWLINK with NLM_F_CREATE|NLM_F_EXCL, IFLA_IFNAME and IFLA_LINKINFO/IFLA_INFO_KIND, as
    /// <c>ip link add NAME type KIND</c> does. A taken name throws with <see cref="Errno.EEXIST"/>; a kind the kernel
    /// does not know (module absent and not loadable as "rtnl-link-KIND") with <see cref="Errno.EOPNOTSUPP"/>.
    /// </summary>
    public void CreateLink(string name, string kind)
    {
        var request = BuildCreateLink(name, kind);
        socket.Acknowledge(request, $"RTM_NEWLINK({name}, kind={kind})");
    }

    internal static NetlinkMessageBuilder BuildCreateLink(string name, string kind)
    {
        ValidateName(name);
        ArgumentException.ThrowIfNullOrEmpty(kind);
        var request = new NetlinkMessageBuilder(Rtnetlink.NewLink,
            NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack | NetlinkMessageFlags.Exclusive | NetlinkMessageFlags.Create);
        request.AppendFamilyHeader(Rtnetlink.InterfaceInfoSize);
        request.AddString(Rtnetlink.IflaName, name);
        int linkInfo = request.BeginNested(Rtnetlink.IflaLinkInfo);
        request.AddString(Rtnetlink.IflaInfoKind, kind);
        request.EndNested(linkInfo);
        return request;
    }

    /// <summary>RTM_DELLINK for interface <paramref name="index"/> (any kind). An absent index throws with <see cref="Errno.ENODEV"/>.</summary>
    public void DeleteLink(int index)
    {
        var request = new NetlinkMessageBuilder(Rtnetlink.DeleteLink, NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack);
        BinaryPrimitives.WriteInt32LittleEndian(request.AppendFamilyHeader(Rtnetlink.InterfaceInfoSize)[4..], index);
        socket.Acknowledge(request, $"RTM_DELLINK(index={index})");
    }

    /// <summary>RTM_NEWLINK setting or clearing IFF_UP on interface <paramref name="index"/>.</summary>
    public void SetLinkUp(int index, bool up = true)
    {
        var request = new NetlinkMessageBuilder(Rtnetlink.NewLink, NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack);
        Span<byte> info = request.AppendFamilyHeader(Rtnetlink.InterfaceInfoSize);
        BinaryPrimitives.WriteInt32LittleEndian(info[4..], index);
        BinaryPrimitives.WriteUInt32LittleEndian(info[8..], up ? Rtnetlink.IffUp : 0);
        BinaryPrimitives.WriteUInt32LittleEndian(info[12..], Rtnetlink.IffUp);
        socket.Acknowledge(request, $"RTM_NEWLINK(index={index}, {(up ? "up" : "down")})");
    }

    /// <summary>
    /// RTM_NEWLINK with IFLA_MTU on interface <paramref name="index"/>, as <c>ip link set dev NAME mtu MTU</c> does. A value
    /// outside the driver's range throws with <see cref="Errno.EINVAL"/>.
    /// </summary>
    public void SetLinkMtu(int index, uint mtu)
    {
        var request = new NetlinkMessageBuilder(Rtnetlink.NewLink, NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack);
        BinaryPrimitives.WriteInt32LittleEndian(request.AppendFamilyHeader(Rtnetlink.InterfaceInfoSize)[4..], index);
        request.AddUInt32(Rtnetlink.IflaMtu, mtu);
        socket.Acknowledge(request, $"RTM_NEWLINK(index={index}, mtu={mtu})");
    }

    /// <summary>
    /// RTM_NEWADDR with NLM_F_EXCL: an address already present throws with <see cref="Errno.EEXIST"/>.
    /// The kernel adds the prefix route itself.
    /// </summary>
    public void AddAddress(int index, IPAddress address, int prefixLength)
    {
        var request = BuildAddAddress(index, address, prefixLength);
        socket.Acknowledge(request,
            $"RTM_NEWADDR(index={index}, family={FamilyName(ToKernelFamily(address.AddressFamily))}, prefixlen={prefixLength})");
    }

    internal static NetlinkMessageBuilder BuildAddAddress(int index, IPAddress address, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(address);
        byte family = ToKernelFamily(address.AddressFamily);
        int maxPrefix = family == Rtnetlink.AfInet ? 32 : 128;
        ArgumentOutOfRangeException.ThrowIfNegative(prefixLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(prefixLength, maxPrefix);

        var request = new NetlinkMessageBuilder(Rtnetlink.NewAddress,
            NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack | NetlinkMessageFlags.Exclusive | NetlinkMessageFlags.Create);
        Span<byte> header = request.AppendFamilyHeader(Rtnetlink.InterfaceAddressSize);
        header[0] = family;
        header[1] = (byte)prefixLength;
        header[3] = Rtnetlink.RtScopeUniverse;
        BinaryPrimitives.WriteInt32LittleEndian(header[4..], index);
        byte[] bytes = address.GetAddressBytes();
        if (family == Rtnetlink.AfInet)
            request.AddAttribute(Rtnetlink.IfaLocal, bytes);
        request.AddAttribute(Rtnetlink.IfaAddress, bytes);
        return request;
    }

    /// <summary>
    /// RTM_NEWROUTE for the default route via <paramref name="gateway"/> in the main table, optionally pinned to
    /// <paramref name="outputInterface"/>. ENETUNREACH means the gateway is not on a configured prefix yet.
    /// </summary>
    public void AddDefaultRoute(IPAddress gateway, int? outputInterface = null)
    {
        ArgumentNullException.ThrowIfNull(gateway);
        byte family = ToKernelFamily(gateway.AddressFamily);
        var request = new NetlinkMessageBuilder(Rtnetlink.NewRoute,
            NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack | NetlinkMessageFlags.Exclusive | NetlinkMessageFlags.Create);
        Span<byte> route = request.AppendFamilyHeader(Rtnetlink.RouteMessageSize);
        route[0] = family;          // rtm_family; dst_len, src_len, tos stay 0
        route[4] = Rtnetlink.RtTableMain;
        route[5] = Rtnetlink.RtProtocolBoot;
        route[6] = Rtnetlink.RtScopeUniverse;
        route[7] = Rtnetlink.RtnUnicast;
        request.AddAttribute(Rtnetlink.RtaGateway, gateway.GetAddressBytes());
        if (outputInterface is int index)
            request.AddUInt32(Rtnetlink.RtaOutputInterface, (uint)index);
        socket.Acknowledge(request, $"RTM_NEWROUTE(default, family={FamilyName(family)}, oif={outputInterface?.ToString() ?? "any"})");
    }

    /// <inheritdoc />
    public void Dispose() => socket.Dispose();

    internal static Link ParseLink(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < Rtnetlink.InterfaceInfoSize)
            KernelDataException.Throw(KernelDataError.NetlinkHeaderTruncated, $"ifinfomsg of {payload.Length} bytes");
        int index = BinaryPrimitives.ReadInt32LittleEndian(payload[4..]);
        var flags = (LinkFlags)BinaryPrimitives.ReadUInt32LittleEndian(payload[8..]);
        string name = "";
        PhysicalAddress? mac = null;
        var state = LinkOperationalState.Unknown;
        uint mtu = 0;
        var attributes = new AttributeReader(payload[Rtnetlink.InterfaceInfoSize..]);
        while (attributes.TryRead(out ushort type, out ReadOnlySpan<byte> value))
        {
            switch (type)
            {
                case Rtnetlink.IflaName: name = AttributeReader.ReadString(value); break;
                case Rtnetlink.IflaAddress: mac = new PhysicalAddress(value.ToArray()); break;
                case Rtnetlink.IflaOperState: state = (LinkOperationalState)AttributeReader.ReadByte(value); break;
                case Rtnetlink.IflaMtu: mtu = AttributeReader.ReadUInt32(value); break;
            }
        }
        return new Link(index, name, mac, flags, state, mtu);
    }

    internal static InterfaceAddress? ParseAddress(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < Rtnetlink.InterfaceAddressSize)
            KernelDataException.Throw(KernelDataError.NetlinkHeaderTruncated, $"ifaddrmsg of {payload.Length} bytes");
        byte family = payload[0];
        int prefixLength = payload[1];
        int index = BinaryPrimitives.ReadInt32LittleEndian(payload[4..]);
        int size = family switch { Rtnetlink.AfInet => 4, Rtnetlink.AfInet6 => 16, _ => 0 };
        if (size == 0)
            return null;
        // Found by fuzzing: ifa_prefixlen was taken as is, so 252 came out as an IPv4 prefix length.
        if (prefixLength > size * 8)
            KernelDataException.Throw(KernelDataError.NetlinkValueOutOfRange, $"prefix length {prefixLength} for family {family}");
        IPAddress? local = null, address = null;
        var attributes = new AttributeReader(payload[Rtnetlink.InterfaceAddressSize..]);
        while (attributes.TryRead(out ushort type, out ReadOnlySpan<byte> value))
        {
            if (type is not (Rtnetlink.IfaLocal or Rtnetlink.IfaAddress))
                continue;
            if (value.Length != size)
                KernelDataException.Throw(KernelDataError.NetlinkAttributeSize, $"address of {value.Length} bytes for family {family}");
            if (type == Rtnetlink.IfaLocal) local = new IPAddress(value);
            else address = new IPAddress(value);
        }
        return (local ?? address) is { } chosen ? new InterfaceAddress(index, chosen, prefixLength) : null;
    }

    static byte ToKernelFamily(AddressFamily family) => family switch
    {
        AddressFamily.InterNetwork => Rtnetlink.AfInet,
        AddressFamily.InterNetworkV6 => Rtnetlink.AfInet6,
        AddressFamily.Unspecified => Rtnetlink.AfUnspec,
        _ => throw new ArgumentException($"address family {family} is not IPv4 or IPv6"),
    };

    // IFNAMSIZ is 16 with the NUL (include/uapi/linux/if.h); dev_valid_name refuses '/', ':' and whitespace.
    static void ValidateName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Length > 15 || name is "." or ".." || name.AsSpan().IndexOfAny("/: \t\n\0") >= 0 || !System.Text.Ascii.IsValid(name))
            throw new ArgumentException($"not a valid interface name ({name.Length} characters)", nameof(name));
    }

    static string FamilyName(byte family) => family == Rtnetlink.AfInet ? "inet" : "inet6";
}

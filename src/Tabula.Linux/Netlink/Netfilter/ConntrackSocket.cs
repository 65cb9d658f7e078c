using System.Net;
using System.Net.Sockets;

namespace Tabula.Linux.Netlink.Netfilter;

/// <summary>A conntrack entry's original direction, as ctnetlink dumps it. Held in memory only, never logged.</summary>
/// <param name="Family">NFPROTO_IPV4 or NFPROTO_IPV6.</param>
/// <param name="Source">The original tuple's source address (a customer's tunnel address for egress traffic).</param>
/// <param name="Destination">The original tuple's destination address.</param>
/// <param name="Protocol">The transport protocol number.</param>
/// <param name="SourceNat">IPS_SRC_NAT: the entry carries a source NAT binding.</param>
public sealed record ConntrackEntry(NfTablesFamily Family, IPAddress Source, IPAddress Destination, byte Protocol, bool SourceNat)
{
    internal byte[] OriginalTuple { get; init; } = [];
    internal byte[]? Zone { get; init; }
}

/// <summary>
/// ctnetlink (NFNL_SUBSYS_CTNETLINK): lists conntrack entries, counts the NAT table, and deletes the entries of one
/// address so that removing a device cuts its established connections too. Not thread-safe.
/// </summary>
/// <remarks>
/// Deleting by address dumps the table and deletes each matching entry by its original tuple (IPCTNL_MSG_CT_DELETE
/// with CTA_TUPLE_ORIG), which every kernel supports, rather than relying on the newer flush filters.
/// </remarks>
public sealed class ConntrackSocket : IDisposable
{
    const byte MessageNew = 0, MessageGet = 1, MessageDelete = 2;             // enum cntl_msg_types
    const ushort TupleOriginal = 1, Status = 3, Zone = 18;                    // enum ctattr_type
    const ushort TupleIp = 1, TupleProto = 2;                                 // enum ctattr_tuple
    const ushort IpV4Source = 1, IpV4Destination = 2, IpV6Source = 3, IpV6Destination = 4;   // enum ctattr_ip
    const ushort ProtoNumber = 1;                                             // enum ctattr_l4proto
    const uint StatusSourceNat = 1 << 4;                                      // IPS_SRC_NAT

    readonly NetlinkSocket socket;

    ConntrackSocket(NetlinkSocket socket) => this.socket = socket;

    /// <summary>Opens a NETLINK_NETFILTER socket in the calling thread's network namespace.</summary>
    public static ConntrackSocket Open()
    {
        var socket = NetlinkSocket.Open(NetlinkProtocol.Netfilter);
        try { socket.SetReceiveTimeout(NetfilterLimits.ReplyTimeout); }
        catch { socket.Dispose(); throw; }
        return new ConntrackSocket(socket);
    }

    /// <summary>IPCTNL_MSG_CT_GET dump of both families.</summary>
    public IReadOnlyList<ConntrackEntry> List()
    {
        var entries = new List<ConntrackEntry>();
        var request = Nfnetlink.Start(Nfnetlink.Type(Nfnetlink.SubsystemConntrack, MessageGet), NetlinkMessageFlags.Dump, 0);
        socket.Dump(request, "IPCTNL_MSG_CT_GET(dump)", message =>
        {
            if (message.Type != Nfnetlink.Type(Nfnetlink.SubsystemConntrack, MessageNew))
                return;
            if (entries.Count >= NetfilterLimits.MaxDumpObjects)
                KernelDataException.Throw(KernelDataError.NetfilterTooManyObjects, $"over {NetfilterLimits.MaxDumpObjects} conntrack entries");
            if (Parse(message.Payload) is { } entry)
                entries.Add(entry);
        });
        return entries;
    }

    /// <summary>Entries with a source NAT binding: the NAT table's size, a count and nothing else.</summary>
    public int CountSourceNat() => List().Count(e => e.SourceNat);

    /// <summary>Deletes every entry whose original source or destination is <paramref name="address"/>; returns how many.</summary>
    public int DeleteByAddress(IPAddress address) => DeleteByAddresses([address]);

    /// <summary>Deletes every entry whose original source or destination is one of <paramref name="addresses"/> (a
    /// device's IPv4 and IPv6 tunnel addresses: one dump of the table for both); returns how many.</summary>
    public int DeleteByAddresses(IReadOnlyCollection<IPAddress> addresses)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        foreach (var address in addresses)
            ArgumentNullException.ThrowIfNull(address, nameof(addresses));
        int deleted = 0;
        foreach (ConntrackEntry entry in List().Where(e => addresses.Contains(e.Source) || addresses.Contains(e.Destination)))
        {
            var request = Nfnetlink.Start(Nfnetlink.Type(Nfnetlink.SubsystemConntrack, MessageDelete), NetlinkMessageFlags.Ack, (byte)entry.Family);
            request.AddAttribute((ushort)(TupleOriginal | NetlinkHeader.NestedFlag), entry.OriginalTuple);
            if (entry.Zone is { } zone)
                request.AddAttribute(Zone, zone);
            try
            {
                socket.Acknowledge(request, $"IPCTNL_MSG_CT_DELETE(family={entry.Family}, proto={entry.Protocol})");
                deleted++;
            }
            catch (LinuxException e) when (e.Errno == Errno.ENOENT) { }   // it expired meanwhile
        }
        return deleted;
    }

    /// <inheritdoc />
    public void Dispose() => socket.Dispose();

    internal static ConntrackEntry? Parse(ReadOnlySpan<byte> payload)
    {
        var attributes = new AttributeReader(Nfnetlink.Attributes(payload, out byte family));
        if (family is not ((byte)NfTablesFamily.IPv4 or (byte)NfTablesFamily.IPv6))
            return null;
        byte[]? tuple = null, zone = null;
        uint status = 0;
        while (attributes.TryRead(out ushort type, out ReadOnlySpan<byte> value))
        {
            switch (type)
            {
                case TupleOriginal: tuple = value.ToArray(); break;
                case Status: status = Nfnetlink.ReadBigEndianUInt32(value); break;
                case Zone: zone = value.ToArray(); break;
            }
        }
        if (tuple is null)
            KernelDataException.Throw(KernelDataError.NetfilterAttributeMissing, "conntrack entry without CTA_TUPLE_ORIG");

        IPAddress? source = null, destination = null;
        byte protocol = 0;
        var parts = new AttributeReader(tuple);
        while (parts.TryRead(out ushort type, out ReadOnlySpan<byte> value))
        {
            var inner = new AttributeReader(value);
            while (inner.TryRead(out ushort innerType, out ReadOnlySpan<byte> innerValue))
            {
                if (type == TupleProto && innerType == ProtoNumber)
                    protocol = AttributeReader.ReadByte(innerValue);
                else if (type == TupleIp)
                {
                    int size = innerType is IpV4Source or IpV4Destination ? 4 : innerType is IpV6Source or IpV6Destination ? 16 : 0;
                    if (size == 0)
                        continue;
                    if (innerValue.Length != size)
                        KernelDataException.Throw(KernelDataError.NetlinkAttributeSize, $"conntrack address of {innerValue.Length} bytes");
                    if (innerType is IpV4Source or IpV6Source) source = new IPAddress(innerValue);
                    else destination = new IPAddress(innerValue);
                }
            }
        }
        if (source is null || destination is null)
            KernelDataException.Throw(KernelDataError.NetfilterAttributeMissing, "conntrack tuple without addresses");
        return new ConntrackEntry((NfTablesFamily)family, source, destination, protocol, (status & StatusSourceNat) != 0)
        {
            OriginalTuple = tuple,
            Zone = zone,
        };
    }
}

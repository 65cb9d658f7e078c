using System.Net.Sockets;
using Tabula.Linux;
using Tabula.Linux.Netlink;
using Tabula.Linux.Netlink.Netfilter;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// A ctnetlink IPCTNL_MSG_CT_GET dump reply datagram, read as <see cref="ConntrackSocket"/> reads it: every message
/// through the netlink message reader, IPCTNL_MSG_CT_NEW payloads through the entry parser, NLMSG_ERROR through the
/// error reader. An accepted entry has addresses of 4 or 16 bytes, and the message it would be deleted by
/// (nfgenmsg, CTA_TUPLE_ORIG, CTA_ZONE) reads back as the same entry.
/// </summary>
public static class ConntrackNetlinkTarget
{
    const ushort NewEntry = 1 << 8;   // NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW

    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        try
        {
            var reader = new NetlinkMessageReader(input);
            while (reader.TryRead(out NetlinkMessage message))
            {
                if (message.Type == NetlinkHeader.Error)
                    _ = NetlinkSocket.ReadError(message, out _);
                if (message.Type != NewEntry || ConntrackSocket.Parse(message.Payload) is not { } entry)
                    continue;
                FuzzFinding.Check(entry.Family is NfTablesFamily.IPv4 or NfTablesFamily.IPv6, "conntrack: an entry of another family", input);
                FuzzFinding.Check(entry.Source.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6
                    && entry.Destination.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6, "conntrack: an address that is neither IPv4 nor IPv6", input);
                FuzzFinding.Check(entry.OriginalTuple.Length > 0, "conntrack: an entry without its tuple", input);

                var again = ConntrackSocket.Parse(DeleteMessage(entry));
                FuzzFinding.Check(again is not null && again.Family == entry.Family && again.Source.Equals(entry.Source)
                    && again.Destination.Equals(entry.Destination) && again.Protocol == entry.Protocol
                    && again.OriginalTuple.AsSpan().SequenceEqual(entry.OriginalTuple)
                    && (again.Zone ?? []).AsSpan().SequenceEqual(entry.Zone ?? []), "conntrack: the delete message reads back as another entry", input);
            }
            return true;
        }
        catch (KernelDataException) { return false; }
    }

    // The payload of IPCTNL_MSG_CT_DELETE as DeleteByAddresses builds it (without the status, so SourceNat is not compared).
    static byte[] DeleteMessage(ConntrackEntry entry)
    {
        var builder = new NetlinkMessageBuilder(NewEntry, NetlinkMessageFlags.None);
        Span<byte> header = builder.AppendFamilyHeader(4);
        header[0] = (byte)entry.Family;
        builder.AddAttribute(1 | NetlinkHeader.NestedFlag, entry.OriginalTuple);
        if (entry.Zone is { } zone)
            builder.AddAttribute(18, zone);
        return builder.Finish(1)[NetlinkHeader.Size..].ToArray();
    }
}

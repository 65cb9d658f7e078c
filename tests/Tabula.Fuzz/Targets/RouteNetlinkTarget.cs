using Tabula.Linux;
using Tabula.Linux.Netlink;
using Tabula.Linux.Netlink.Route;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// An rtnetlink dump reply datagram, read as RouteSocket reads link and address dumps: every message through the
/// message reader, RTM_NEWLINK payloads through the link parser, RTM_NEWADDR ones through the address parser, and
/// every attribute (and one level of nesting) walked.
/// </summary>
public static class RouteNetlinkTarget
{
    const ushort NewLink = 16, NewAddress = 20;

    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        try
        {
            var reader = new NetlinkMessageReader(input);
            while (reader.TryRead(out NetlinkMessage message))
            {
                if (message.Type == NewLink)
                    _ = RouteSocket.ParseLink(message.Payload).HasCarrier;
                else if (message.Type == NewAddress && RouteSocket.ParseAddress(message.Payload) is { } address)
                    FuzzFinding.Check(address.PrefixLength is >= 0 and <= 128, "rtnetlink: prefix length out of range", input);
                // Every attribute after the family header, and one level of nesting (IFLA_LINKINFO and the like).
                int familyHeader = message.Type == NewLink ? 16 : message.Type == NewAddress ? 8 : message.Payload.Length;
                var attributes = new AttributeReader(message.Payload[Math.Min(familyHeader, message.Payload.Length)..]);
                while (attributes.TryRead(out _, out ReadOnlySpan<byte> payload))
                {
                    var nested = new AttributeReader(payload);
                    try { while (nested.TryRead(out _, out _)) { } }
                    catch (KernelDataException) { }   // not every attribute is nested
                }
            }
            return true;
        }
        catch (KernelDataException) { return false; }
    }
}

using System.Buffers.Binary;
using Tabula.Machine.Network;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// A DHCPv4 reply. An accepted one has its header fields where RFC 2131 puts them (read again here byte by byte),
/// and the values the client derives from it (prefix length, default gateway) are well defined.
/// </summary>
public static class DhcpMessageTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        DhcpMessage message;
        try { message = DhcpMessage.Parse(input); }
        catch (DhcpException) { return false; }

        FuzzFinding.Check(input[0] == 2 && input[1] == 1 && input[2] == 6, "DHCP: accepted a message that is not an Ethernet BOOTREPLY", input);
        FuzzFinding.Check(message.TransactionId == BinaryPrimitives.ReadUInt32BigEndian(input[4..]), "DHCP: xid is not bytes 4-7", input);
        FuzzFinding.Check(message.YourAddress.GetAddressBytes().AsSpan().SequenceEqual(input.Slice(16, 4)), "DHCP: yiaddr is not bytes 16-19", input);
        FuzzFinding.Check(message.ClientHardwareAddress.GetAddressBytes().AsSpan().SequenceEqual(input.Slice(28, 6)), "DHCP: chaddr is not bytes 28-33", input);
        FuzzFinding.Check(message.PrefixLength is >= 0 and <= 32, "DHCP: prefix length out of range", input);
        FuzzFinding.Check(message.ClasslessRoutes.All(r => r.PrefixLength is >= 0 and <= 32), "DHCP: classless route width out of range", input);
        _ = message.DefaultGateway;
        return true;
    }
}

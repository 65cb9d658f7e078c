using Tabula.Linux;
using Tabula.Linux.Netlink;
using Tabula.WireGuard;
using Tabula.WireGuard.Kernel;
using Limits = Tabula.WireGuard.Limits;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// A WG_CMD_GET_DEVICE dump reply datagram: messages split by the netlink message reader, each payload
/// (genlmsghdr and attributes) into the decoder, then the device state built. Keys are zeroed as in production.
/// </summary>
public static class WireGuardNetlinkTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        try
        {
            using var decoder = new KernelGetDecoder();
            var reader = new NetlinkMessageReader(input);
            while (reader.TryRead(out NetlinkMessage message))
                decoder.Accept(message.Payload);
            using var state = decoder.ToDeviceState("wg0");
            FuzzFinding.Check(state.InterfaceName.Length <= Limits.MaxInterfaceNameLength, "WireGuard netlink: interface name over IFNAMSIZ", input);
            FuzzFinding.Check(state.Peers.Count <= Limits.MaxPeers, "WireGuard netlink: more peers than the limit", input);
            return true;
        }
        catch (KernelDataException) { return false; }
        catch (WireGuardProtocolException) { return false; }
    }
}

namespace Tabula.WireGuard.Kernel;

/// <summary>Resolves a generic-netlink family name to its id (CTRL_CMD_GETFAMILY to the "nlctrl" controller).</summary>
internal static class GenericNetlinkFamily
{
    /// <summary>The family id, or null when the kernel has no such family (ENOENT: module not loaded).</summary>
    public static ushort? Resolve(NetlinkSocket socket, string name)
    {
        var writer = new NetlinkMessageWriter(256);
        writer.Begin(Netlink.ControllerId, Netlink.Request | Netlink.Ack, socket.NextSequence());
        writer.GenericHeader(Netlink.ControllerGetFamily, 1);
        writer.String(Netlink.ControllerFamilyName, name);
        ushort? id = null;
        bool missing = false;
        try
        {
            socket.Request(writer.Finish(), $"CTRL_CMD_GETFAMILY {name}",
                errno => errno == Errno.ENOENT ? new FamilyMissing() : null,
                (type, payload) =>
                {
                    if (type != Netlink.ControllerId || payload.Length < Netlink.GenericHeaderLength)
                        WireGuardProtocolException.Throw(ProtocolError.UnexpectedMessage, $"type {type}");
                    var attributes = new NetlinkAttributeReader(payload[Netlink.GenericHeaderLength..]);
                    while (attributes.TryRead(out ushort attribute, out var value))
                        if (attribute == Netlink.ControllerFamilyId)
                            id = NetlinkAttributeReader.U16(value, "CTRL_ATTR_FAMILY_ID");
                });
        }
        catch (FamilyMissing)
        {
            missing = true;
        }
        if (missing)
            return null;
        return id ?? throw new WireGuardProtocolException(ProtocolError.UnexpectedMessage, "no CTRL_ATTR_FAMILY_ID");
    }

    sealed class FamilyMissing : Exception;
}

namespace Tabula.Linux.Netlink.Generic;

/// <summary>
/// Generic netlink (include/uapi/linux/genetlink.h): the genlmsghdr every family's messages start with, and family
/// resolution through the "nlctrl" controller. A family's own commands and attributes live with its owner
/// (Tabula.WireGuard for "wireguard").
/// </summary>
public static class GenericNetlink
{
    /// <summary>sizeof(struct genlmsghdr): u8 cmd, u8 version, u16 reserved.</summary>
    public const int HeaderSize = 4;

    /// <summary>GENL_ID_CTRL: the controller's fixed family id.</summary>
    public const ushort ControllerFamilyId = 0x10;

    const byte ControllerGetFamily = 3;          // CTRL_CMD_GETFAMILY
    const byte ControllerVersion = 2;
    const ushort AttributeFamilyId = 1, AttributeFamilyName = 2;   // CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME
    const int MaxFamilyNameBytes = 15;           // GENL_NAMSIZ - 1

    /// <summary>Appends struct genlmsghdr (command, version) to a message of a generic family.</summary>
    public static void AppendHeader(NetlinkMessageBuilder message, byte command, byte version)
    {
        ArgumentNullException.ThrowIfNull(message);
        Span<byte> header = message.AppendFamilyHeader(HeaderSize);
        header[0] = command;
        header[1] = version;
    }

    /// <summary>The attributes after the genlmsghdr of a reply's payload; a payload shorter than the header is refused.</summary>
    public static ReadOnlySpan<byte> Attributes(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < HeaderSize)
            KernelDataException.Throw(KernelDataError.NetlinkHeaderTruncated, $"genlmsghdr of {payload.Length} bytes");
        return payload[HeaderSize..];
    }

    /// <summary>
    /// CTRL_CMD_GETFAMILY: the id of family <paramref name="name"/>, or null when the kernel has no such family
    /// (ENOENT: its module is not loaded). <paramref name="socket"/> must be a <see cref="NetlinkProtocol.Generic"/> socket.
    /// </summary>
    public static ushort? ResolveFamily(NetlinkSocket socket, string name)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Length > MaxFamilyNameBytes)
            throw new ArgumentException($"family name longer than {MaxFamilyNameBytes} characters", nameof(name));
        var request = new NetlinkMessageBuilder(ControllerFamilyId, NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack);
        AppendHeader(request, ControllerGetFamily, ControllerVersion);
        request.AddString(AttributeFamilyName, name);
        ushort? id = null;
        try
        {
            socket.Request(request, $"CTRL_CMD_GETFAMILY({name})", message =>
            {
                if (message.Type != ControllerFamilyId)
                    KernelDataException.Throw(KernelDataError.NetlinkUnexpectedMessage, $"CTRL_CMD_GETFAMILY: message type {message.Type}");
                var attributes = new AttributeReader(Attributes(message.Payload));
                while (attributes.TryRead(out ushort type, out ReadOnlySpan<byte> value))
                    if (type == AttributeFamilyId)
                        id = AttributeReader.ReadUInt16(value);
            });
        }
        catch (LinuxException e) when (e.Errno == Errno.ENOENT)
        {
            return null;
        }
        return id ?? throw new KernelDataException(KernelDataError.NetlinkUnexpectedMessage, $"CTRL_CMD_GETFAMILY({name}): no CTRL_ATTR_FAMILY_ID");
    }
}

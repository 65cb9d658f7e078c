using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Tabula.WireGuard.Kernel.Interop;

namespace Tabula.WireGuard.Kernel;

/// <summary>
/// Creates, raises and deletes kernel WireGuard interfaces with rtnetlink (RTM_NEWLINK with IFLA_INFO_KIND
/// "wireguard", as <c>ip link add wg0 type wireguard</c> does). A minimal stand-in until Tabula.Linux's rtnetlink
/// lands; addresses and routes belong there. Works in the calling thread's network namespace; needs CAP_NET_ADMIN.
/// </summary>
public static class WireGuardLink
{
    /// <summary>Creates <paramref name="name"/>. Throws <see cref="WireGuardUnavailableException"/> (NoKernelSupport) without the module, <see cref="WireGuardDeviceException"/> EEXIST when the name is taken.</summary>
    public static void Create(string name) => CreateLink(InterfaceNames.Validate(name, nameof(name)), "wireguard");

    /// <summary>Deletes <paramref name="name"/> (any link kind). Throws <see cref="WireGuardUnavailableException"/> (NoSuchInterface) when absent.</summary>
    public static void Delete(string name)
    {
        int index = IndexOf(InterfaceNames.Validate(name, nameof(name)))
                    ?? throw new WireGuardUnavailableException(UnavailableReason.NoSuchInterface, name);
        using var socket = NetlinkSocket.Open(Netlink.ProtocolRoute);
        var writer = new NetlinkMessageWriter(128);
        writer.Begin(Netlink.DeleteLink, Netlink.Request | Netlink.Ack, socket.NextSequence());
        WriteInterfaceInfo(writer.Reserve(Netlink.InterfaceInfoLength), index, 0, 0);
        socket.Request(writer.Finish(), $"RTM_DELLINK {name}",
            errno => errno == Errno.ENODEV ? new WireGuardUnavailableException(UnavailableReason.NoSuchInterface, name) : null);
    }

    /// <summary>Sets <paramref name="name"/> administratively up (or down).</summary>
    public static void SetUp(string name, bool up = true)
    {
        int index = IndexOf(InterfaceNames.Validate(name, nameof(name)))
                    ?? throw new WireGuardUnavailableException(UnavailableReason.NoSuchInterface, name);
        using var socket = NetlinkSocket.Open(Netlink.ProtocolRoute);
        var writer = new NetlinkMessageWriter(128);
        writer.Begin(Netlink.NewLink, Netlink.Request | Netlink.Ack, socket.NextSequence());
        WriteInterfaceInfo(writer.Reserve(Netlink.InterfaceInfoLength), index, up ? Netlink.InterfaceUp : 0, Netlink.InterfaceUp);
        socket.Request(writer.Finish(), $"RTM_NEWLINK {name} {(up ? "up" : "down")}");
    }

    /// <summary>The interface index, or null when no interface has that name (if_nametoindex).</summary>
    public static int? IndexOf(string name)
    {
        uint index = Libc.InterfaceNameToIndex(InterfaceNames.Validate(name, nameof(name)));
        if (index != 0)
            return (int)index;
        int errno = Marshal.GetLastPInvokeError();
        return errno is Errno.ENODEV or Errno.ENOENT or 0
            ? null
            : throw new WireGuardSystemException($"if_nametoindex({name})", errno);
    }

    /// <summary>RTM_NEWLINK with NLM_F_CREATE|NLM_F_EXCL, IFLA_IFNAME and IFLA_LINKINFO/IFLA_INFO_KIND = <paramref name="kind"/>.</summary>
    internal static void CreateLink(string name, string kind)
    {
        using var socket = NetlinkSocket.Open(Netlink.ProtocolRoute);
        var writer = new NetlinkMessageWriter(256);
        writer.Begin(Netlink.NewLink, Netlink.Request | Netlink.Ack | Netlink.Create | Netlink.Excl, socket.NextSequence());
        WriteInterfaceInfo(writer.Reserve(Netlink.InterfaceInfoLength), 0, 0, 0);
        writer.String(Netlink.LinkName, name);
        int linkInfo = writer.BeginNested(Netlink.LinkInfo);
        writer.String(Netlink.LinkInfoKind, kind);
        writer.EndNested(linkInfo);
        // EOPNOTSUPP: rtnl_newlink found no rtnl_link_ops for the kind and could not load "rtnl-link-<kind>".
        socket.Request(writer.Finish(), $"RTM_NEWLINK {name} type {kind}",
            errno => errno == Errno.EOPNOTSUPP ? new WireGuardUnavailableException(UnavailableReason.NoKernelSupport, name) : null);
    }

    // struct ifinfomsg: u8 family, u8 pad, u16 type, s32 index, u32 flags, u32 change.
    static void WriteInterfaceInfo(Span<byte> info, int index, uint flags, uint change)
    {
        BinaryPrimitives.WriteInt32LittleEndian(info[4..], index);
        BinaryPrimitives.WriteUInt32LittleEndian(info[8..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(info[12..], change);
    }
}

namespace Tabula.WireGuard.Kernel;

/// <summary>Netlink constants from include/uapi/linux/netlink.h, genetlink.h and rtnetlink.h.</summary>
internal static class Netlink
{
    public const int ProtocolRoute = 0;      // NETLINK_ROUTE
    public const int ProtocolGeneric = 16;   // NETLINK_GENERIC

    public const int HeaderLength = 16;      // struct nlmsghdr
    public const int AttributeHeaderLength = 4;   // struct nlattr
    public const int GenericHeaderLength = 4;     // struct genlmsghdr

    // nlmsg_flags
    public const ushort Request = 0x1, Multi = 0x2, Ack = 0x4;
    public const ushort Dump = 0x300;                               // NLM_F_ROOT | NLM_F_MATCH
    public const ushort Excl = 0x200, Create = 0x400;               // for NEW requests
    public const ushort Capped = 0x100, AckTlvs = 0x200;            // on NLMSG_ERROR

    // nlmsg_type
    public const ushort Noop = 1, Error = 2, Done = 3, Overrun = 4;

    public const ushort AttributeNested = 0x8000, AttributeNetByteOrder = 0x4000;
    public const ushort AttributeTypeMask = 0x3fff;

    public const ushort ErrorAttributeMessage = 1;                  // NLMSGERR_ATTR_MSG

    // Generic netlink controller
    public const ushort ControllerId = 0x10;                        // GENL_ID_CTRL
    public const byte ControllerGetFamily = 3;                      // CTRL_CMD_GETFAMILY
    public const ushort ControllerFamilyId = 1, ControllerFamilyName = 2;

    // rtnetlink
    public const ushort NewLink = 16, DeleteLink = 17;              // RTM_NEWLINK, RTM_DELLINK
    public const int InterfaceInfoLength = 16;                      // struct ifinfomsg
    public const ushort LinkName = 3, LinkInfo = 18, LinkInfoKind = 1;   // IFLA_IFNAME, IFLA_LINKINFO, IFLA_INFO_KIND
    public const uint InterfaceUp = 0x1;                            // IFF_UP

    public static int Align(int length) => (length + 3) & ~3;
}

/// <summary>The kernel's "wireguard" generic-netlink family (include/uapi/linux/wireguard.h).</summary>
internal static class WgNetlink
{
    public const string FamilyName = "wireguard";
    public const byte Version = 1;                                  // WG_GENL_VERSION
    public const byte GetDevice = 0, SetDevice = 1;                 // WG_CMD_*

    // WGDEVICE_A_*
    public const ushort DeviceIfIndex = 1, DeviceIfName = 2, DevicePrivateKey = 3, DevicePublicKey = 4,
        DeviceFlags = 5, DeviceListenPort = 6, DeviceFwmark = 7, DevicePeers = 8;
    public const uint DeviceFlagReplacePeers = 1;                   // WGDEVICE_F_REPLACE_PEERS

    // WGPEER_A_*
    public const ushort PeerPublicKey = 1, PeerPresharedKey = 2, PeerFlags = 3, PeerEndpoint = 4,
        PeerPersistentKeepalive = 5, PeerLastHandshake = 6, PeerRxBytes = 7, PeerTxBytes = 8, PeerAllowedIps = 9,
        PeerProtocolVersion = 10;
    public const uint PeerFlagRemove = 1, PeerFlagReplaceAllowedIps = 2, PeerFlagUpdateOnly = 4;

    // WGALLOWEDIP_A_*
    public const ushort AllowedIpFamily = 1, AllowedIpAddress = 2, AllowedIpCidr = 3;

    public const ushort AfInet = 2, AfInet6 = 10;
    public const int SockaddrIn = 16, SockaddrIn6 = 28;
}

namespace Tabula.WireGuard.Kernel;

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

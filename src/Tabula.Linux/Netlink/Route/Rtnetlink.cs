namespace Tabula.Linux.Netlink.Route;

/// <summary>rtnetlink constants (include/uapi/linux/rtnetlink.h, if_link.h, if_addr.h).</summary>
internal static class Rtnetlink
{
    internal const ushort NewLink = 16, DeleteLink = 17, GetLink = 18;
    internal const ushort NewAddress = 20, GetAddress = 22;
    internal const ushort NewRoute = 24;

    internal const int InterfaceInfoSize = 16;   // struct ifinfomsg
    internal const int InterfaceAddressSize = 8; // struct ifaddrmsg
    internal const int RouteMessageSize = 12;    // struct rtmsg

    internal const ushort IflaAddress = 1, IflaName = 3, IflaMtu = 4, IflaOperState = 16, IflaLinkInfo = 18;
    internal const ushort IflaInfoKind = 1;
    internal const ushort IfaAddress = 1, IfaLocal = 2, IfaLabel = 3;
    internal const ushort RtaGateway = 5, RtaOutputInterface = 4;

    internal const byte AfUnspec = 0, AfInet = 2, AfInet6 = 10;
    internal const byte RtTableMain = 254;
    internal const byte RtProtocolBoot = 3;
    internal const byte RtScopeUniverse = 0;
    internal const byte RtnUnicast = 1;
    internal const uint IffUp = 0x1;
}

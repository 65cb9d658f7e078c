using System.Net.NetworkInformation;

namespace Tabula.Linux.Netlink.Route;

/// <summary>Interface flags (IFF_* in include/uapi/linux/if.h) as RTM_GETLINK reports them.</summary>
[Flags]
public enum LinkFlags : uint
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>IFF_UP: administratively up.</summary>
    Up = 0x1,
    /// <summary>IFF_BROADCAST.</summary>
    Broadcast = 0x2,
    /// <summary>IFF_LOOPBACK.</summary>
    Loopback = 0x8,
    /// <summary>IFF_POINTOPOINT.</summary>
    PointToPoint = 0x10,
    /// <summary>IFF_RUNNING.</summary>
    Running = 0x40,
    /// <summary>IFF_NOARP.</summary>
    NoArp = 0x80,
    /// <summary>IFF_MULTICAST.</summary>
    Multicast = 0x1000,
    /// <summary>IFF_LOWER_UP: carrier present.</summary>
    LowerUp = 0x10000,
}

/// <summary>RFC 2863 operational state (IF_OPER_* in include/uapi/linux/if.h).</summary>
public enum LinkOperationalState : byte
{
    /// <summary>IF_OPER_UNKNOWN.</summary>
    Unknown = 0,
    /// <summary>IF_OPER_NOTPRESENT.</summary>
    NotPresent = 1,
    /// <summary>IF_OPER_DOWN.</summary>
    Down = 2,
    /// <summary>IF_OPER_LOWERLAYERDOWN.</summary>
    LowerLayerDown = 3,
    /// <summary>IF_OPER_TESTING.</summary>
    Testing = 4,
    /// <summary>IF_OPER_DORMANT.</summary>
    Dormant = 5,
    /// <summary>IF_OPER_UP.</summary>
    Up = 6,
}

/// <summary>A network interface as RTM_GETLINK describes it.</summary>
/// <param name="Index">ifi_index.</param>
/// <param name="Name">IFLA_IFNAME.</param>
/// <param name="HardwareAddress">IFLA_ADDRESS (the MAC for Ethernet), or null when the link has none.</param>
/// <param name="Flags">ifi_flags.</param>
/// <param name="OperationalState">IFLA_OPERSTATE.</param>
/// <param name="Mtu">IFLA_MTU, 0 when absent.</param>
public sealed record Link(int Index, string Name, PhysicalAddress? HardwareAddress, LinkFlags Flags,
    LinkOperationalState OperationalState, uint Mtu)
{
    /// <summary>Carrier present: IFF_LOWER_UP.</summary>
    public bool HasCarrier => (Flags & LinkFlags.LowerUp) != 0;
}

namespace Tabula.Linux.Netlink;

/// <summary>Netlink protocol families used here (include/uapi/linux/netlink.h).</summary>
public enum NetlinkProtocol
{
    /// <summary>NETLINK_ROUTE: links, addresses, routes.</summary>
    Route = 0,
    /// <summary>NETLINK_NETFILTER: nfnetlink (nf_tables, ctnetlink).</summary>
    Netfilter = 12,
    /// <summary>NETLINK_GENERIC: families such as wireguard.</summary>
    Generic = 16,
}

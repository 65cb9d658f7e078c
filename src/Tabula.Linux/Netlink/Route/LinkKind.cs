namespace Tabula.Linux.Netlink.Route;

/// <summary>IFLA_INFO_KIND values for <see cref="RouteSocket.CreateLink"/> (each is a kernel driver's rtnl_link_ops kind).</summary>
public static class LinkKind
{
    /// <summary>drivers/net/wireguard: an in-kernel WireGuard interface, configured through the "wireguard" generic-netlink family.</summary>
    public const string WireGuard = "wireguard";
    /// <summary>A software bridge.</summary>
    public const string Bridge = "bridge";
    /// <summary>A dummy interface.</summary>
    public const string Dummy = "dummy";
}

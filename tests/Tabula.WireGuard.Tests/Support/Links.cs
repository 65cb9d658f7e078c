using Tabula.Linux.Netlink.Route;

namespace Tabula.WireGuard.Tests.Support;

/// <summary>Interfaces by name through Tabula.Linux's rtnetlink, as the relay handles them, in the calling thread's namespace.</summary>
public static class Links
{
    /// <summary>RTM_NEWLINK of kind "wireguard".</summary>
    public static void CreateWireGuard(string name)
    {
        using var rtnl = RouteSocket.Open();
        rtnl.CreateLink(name, LinkKind.WireGuard);
    }

    /// <summary>Sets the link up; throws when there is none of that name.</summary>
    public static void SetUp(string name)
    {
        using var rtnl = RouteSocket.Open();
        rtnl.SetLinkUp((rtnl.GetLink(name) ?? throw new InvalidOperationException($"no link {name}")).Index);
    }
}

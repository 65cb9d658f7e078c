using Tabula.Linux;
using Tabula.Linux.Netlink.Route;

namespace Tabula.Relay.Serving;

/// <summary>The relay's WireGuard link by name, through Tabula.Linux's rtnetlink in this thread's network namespace.</summary>
internal static class RelayLink
{
    /// <summary>Creates a kernel WireGuard link; one that already exists (a re-enrollment after the first) is kept.</summary>
    internal static void CreateWireGuard(string name)
    {
        using var rtnl = RouteSocket.Open();
        try
        {
            rtnl.CreateLink(name, LinkKind.WireGuard);
        }
        catch (LinuxException e) when (e.Errno == Errno.EEXIST) { }
    }

    /// <summary>Sets the link named <paramref name="name"/> up with rtnetlink in this thread's network namespace.</summary>
    internal static void SetUp(string name)
    {
        using var rtnl = RouteSocket.Open();
        Link link = rtnl.GetLink(name) ?? throw new RelayException("serve", RelayFailure.NoInterface, $"no link named {name}");
        rtnl.SetLinkUp(link.Index);
    }

    /// <summary>Deletes the link named <paramref name="name"/> when it exists.</summary>
    internal static void Delete(string name)
    {
        using var rtnl = RouteSocket.Open();
        if (rtnl.GetLink(name) is { } link)
            rtnl.DeleteLink(link.Index);
    }
}

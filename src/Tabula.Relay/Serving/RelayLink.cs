using Tabula.Linux;
using Tabula.Linux.Netlink.Route;

namespace Tabula.Relay.Serving;

/// <summary>The relay's WireGuard link by name, through Tabula.Linux's rtnetlink in this thread's network namespace.</summary>
internal static class RelayLink
{
    /// <summary>
    /// The relay's WireGuard interface MTU: the kernel's own default for a new wireguard link (1420: a 1500-byte uplink less
    /// WireGuard's 80 bytes of overhead over IPv6), set explicitly so the documented value (docs/relay.md "WireGuard
    /// interface MTU") is what the agent does whatever the kernel's default. Clients at 1380 (Mullvad's apps) fit inside it.
    /// </summary>
    internal const uint WireGuardMtu = 1420;

    /// <summary>
    /// Creates a kernel WireGuard link with <see cref="WireGuardMtu"/>; one that already exists (a re-enrollment after the
    /// first) is kept and gets that MTU too. Returns the MTU the kernel reports for the link afterwards.
    /// </summary>
    internal static uint CreateWireGuard(string name)
    {
        using var rtnl = RouteSocket.Open();
        try
        {
            rtnl.CreateLink(name, LinkKind.WireGuard);
        }
        catch (LinuxException e) when (e.Errno == Errno.EEXIST) { }
        Link link = rtnl.GetLink(name) ?? throw new RelayException("serve", RelayFailure.NoInterface, $"no link named {name}");
        rtnl.SetLinkMtu(link.Index, WireGuardMtu);
        return (rtnl.GetLink(name) ?? throw new RelayException("serve", RelayFailure.NoInterface, $"no link named {name}")).Mtu;
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

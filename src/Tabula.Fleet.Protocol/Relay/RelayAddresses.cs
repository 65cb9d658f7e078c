using System.Net;

namespace Tabula.Fleet.Protocol;

/// <summary>
/// Address ranges both sides of the relay wire judge by: the private ranges every relay blocks as destinations (the
/// agent's default, to which the fleet's <c>blocked_prefixes</c> are added) and the special-purpose ranges no relay's
/// public address can lie in. The controller refuses a placement with such an address at provision; the agent blocks
/// the first list. One list, so the two never disagree.
/// </summary>
public static class RelayAddresses
{
    /// <summary>
    /// Private and reserved ranges relays block by default (issue 15): RFC 1918, 100.64/10 (CGNAT), 169.254/16,
    /// fc00::/7 (the IPv6 pool inside it is dropped by the pool-to-pool rule anyway), fe80::/10.
    /// </summary>
    public static readonly IReadOnlyList<string> DefaultBlockedPrefixes =
        ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "fc00::/7", "fe80::/10"];

    /// <summary>
    /// Ranges that are never a unicast address a host holds on a link and is reached at from the internet (RFC 6890's
    /// special-purpose registries), and IPv4-mapped IPv6 addresses (<see cref="NotHostAddress"/>): a relay's in- or egress
    /// address there is a typo. The documentation ranges
    /// (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) are not here: the lab's internet uses them.
    /// </summary>
    public static readonly IReadOnlyList<(IPNetwork Range, string Name)> NotHostAddresses =
    [
        (IPNetwork.Parse("0.0.0.0/8"), "an unspecified address (\"this network\", 0.0.0.0/8)"),
        (IPNetwork.Parse("127.0.0.0/8"), "a loopback address"),
        (IPNetwork.Parse("169.254.0.0/16"), "a link-local address"),
        (IPNetwork.Parse("224.0.0.0/4"), "a multicast address"),
        (IPNetwork.Parse("240.0.0.0/4"), "a reserved address (240.0.0.0/4, with the broadcast address)"),
        (IPNetwork.Parse("::/128"), "an unspecified address"),
        (IPNetwork.Parse("::1/128"), "a loopback address"),
        (IPNetwork.Parse("fe80::/10"), "a link-local address"),
        (IPNetwork.Parse("ff00::/8"), "a multicast address"),
    ];

    /// <summary>What kind of special-purpose address <paramref name="address"/> is ("a loopback address"), or null when it may be a host's.</summary>
    public static string? NotHostAddress(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        // ::ffff:0:0/96 as a check of its own: IPNetwork.Contains does not match an IPv4-mapped address against that range.
        if (address.IsIPv4MappedToIPv6) return "an IPv4-mapped address (give the IPv4 address as such)";
        foreach (var (range, name) in NotHostAddresses)
            if (range.Contains(address)) return name;
        return null;
    }
}

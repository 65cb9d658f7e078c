using System.Net;

namespace Tabula.Fleet.Core;

/// <summary>
/// The fleet-wide egress settings every relay receives in its /relay/v1/config: the in-tunnel resolver's upstreams,
/// the operator's extra blocked prefixes, and the controller's own listen addresses (management endpoints customers
/// must never reach). Validated once at start, so a typo stops `tabula fleet serve` instead of every relay.
/// </summary>
public sealed record RelayEgressSettings(IReadOnlyList<string> Resolvers, IReadOnlyList<string> BlockedPrefixes, IReadOnlyList<string> PrivateEndpoints)
{
    public static RelayEgressSettings Create(FleetOptions options, AddressPool pool, IEnumerable<IPAddress> listenAddresses)
    {
        var resolvers = new List<string>();
        foreach (string text in options.RelayResolvers)
        {
            if (!IPAddress.TryParse(text, out var address) || text.Contains('/') || (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && address.ScopeId != 0))
                throw new ArgumentException($"--relay-resolver \"{text}\" is not an IP address");
            if (pool.Contains(address))
                throw new ArgumentException($"--relay-resolver {text} lies inside a tunnel pool");
            resolvers.Add(address.ToString());
        }
        var blocked = new List<string>();
        foreach (string text in options.RelayBlockedPrefixes)
        {
            // A host-bits typo ("10.0.0.1/8") is refused rather than silently masked, as the agent refuses it.
            int slash = text.IndexOf('/');
            if (slash < 0 || !IPNetwork.TryParse(text, out var prefix) || !IPAddress.TryParse(text.AsSpan(0, slash), out var written)
                || !written.Equals(prefix.BaseAddress))
                throw new ArgumentException($"--relay-blocked-prefix \"{text}\" is not a prefix ADDRESS/LENGTH with no host bits set");
            blocked.Add(prefix.ToString());
        }
        var endpoints = listenAddresses
            .Where(a => !IPAddress.IsLoopback(a) && !a.Equals(IPAddress.Any) && !a.Equals(IPAddress.IPv6Any))
            .Select(a => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a).Distinct().Select(a => a.ToString()).ToList();
        return new RelayEgressSettings(resolvers, blocked, endpoints);
    }

    /// <summary>A placement's public address must not lie in a tunnel pool (the relay would NAT customers to a customer address).</summary>
    public static void CheckPublicAddress(AddressPool pool, string field, string? text)
    {
        if (text is not null && IPAddress.TryParse(text, out var address) && pool.Contains(address))
            throw new FleetException(FleetError.InvalidInput, $"{field} lies inside a tunnel pool");
    }
}

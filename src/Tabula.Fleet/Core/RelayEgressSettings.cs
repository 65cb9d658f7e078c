using System.Net;
using Tabula.Fleet.Protocol;

namespace Tabula.Fleet.Core;

/// <summary>
/// The fleet-wide egress settings every relay receives in its /relay/v1/config: the in-tunnel resolver's upstreams,
/// the operator's extra blocked prefixes, and the controller's own listen addresses (management endpoints customers
/// must never reach). Validated once at start, so a typo stops `tabula fleet serve` instead of every relay.
/// </summary>
/// <remarks>
/// What the controller checks of a relay's egress, and where (docs/relay.md "Bad egress input: who refuses what"): at
/// start, the resolvers (addresses, outside the pools), the blocked prefixes (no host bits) and that none of its own
/// listen addresses lies in a pool; at provision (<see cref="CheckPublicAddress"/>), every in- and egress address. The
/// relay's uplink subnets are known only to its agent, which refuses a pool overlapping them and a public address not on
/// its uplink.
/// </remarks>
public sealed record RelayEgressSettings(IReadOnlyList<string> Resolvers, IReadOnlyList<string> BlockedPrefixes, IReadOnlyList<string> PrivateEndpoints)
{
    /// <summary>The pools customers' tunnel addresses come from.</summary>
    public AddressPool Pool { get; init; } = AddressPool.Default;

    /// <summary>Accept relay public addresses in the relays' default private ranges (<c>--relay-private-addresses</c>).</summary>
    public bool PrivateAddresses { get; init; }

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
        var listening = listenAddresses
            .Where(a => !IPAddress.IsLoopback(a) && !a.Equals(IPAddress.Any) && !a.Equals(IPAddress.IPv6Any))
            .Select(a => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a).Distinct().ToList();
        // Customers are never to reach the controller; one in a pool would be a customer's address (each relay refuses it too).
        foreach (var address in listening)
            if (pool.Contains(address))
                throw new ArgumentException($"--urls: the listen address {address} lies inside a tunnel pool; relays refuse a pool overlapping a management endpoint");
        return new RelayEgressSettings(resolvers, blocked, [.. listening.Select(a => a.ToString())])
        {
            Pool = pool, PrivateAddresses = options.RelayPrivateAddresses,
        };
    }

    /// <summary>
    /// Refuses a placement's public address (in or egress; already parsed as its family) that no relay can serve at: a
    /// special-purpose address (loopback, multicast, link-local, unspecified, …), one inside a tunnel pool (the relay
    /// would NAT customers to a customer's address), inside a prefix the fleet blocks (<c>--relay-blocked-prefix</c>:
    /// the operator says it is not the internet), or inside the relays' default private ranges unless the fleet was
    /// started with <c>--relay-private-addresses</c> (a fleet on a private network, such as the tests' own).
    /// </summary>
    public void CheckPublicAddress(string field, string text)
    {
        var address = IPAddress.Parse(text);
        if (RelayAddresses.NotHostAddress(address) is { } kind)
            Refuse($"{field} {text} is {kind}, not one a relay can have on its uplink");
        if (Pool.Contains(address))
            Refuse($"{field} {text} lies inside a tunnel pool");
        foreach (string prefix in BlockedPrefixes)
            if (IPNetwork.Parse(prefix).Contains(address))
                Refuse($"{field} {text} lies in {prefix}, a prefix this fleet blocks (--relay-blocked-prefix)");
        if (!PrivateAddresses)
            foreach (string prefix in RelayAddresses.DefaultBlockedPrefixes)
                if (IPNetwork.Parse(prefix).Contains(address))
                    Refuse($"{field} {text} lies in {prefix}, a private range relays block; a fleet on a private network starts with --relay-private-addresses");
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void Refuse(string message) => throw new FleetException(FleetError.InvalidInput, message);
}

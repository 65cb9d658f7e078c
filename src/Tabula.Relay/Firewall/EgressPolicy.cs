using System.Net;
using System.Net.Sockets;
using Tabula.Linux.Netlink;
using Tabula.Linux.Netlink.Route;

namespace Tabula.Relay.Firewall;

/// <summary>
/// The relay's egress configuration as it arrives, in text: what staff set for the relay in the fleet.
/// </summary>
/// <remarks>
/// <see cref="RelayEgress"/> builds it from the fleet's relay config (Tabula.Fleet.Protocol's <c>RelayConfigView</c>:
/// public addresses from the placement's egress addresses, or its <c>ipv4_addr_in</c>/<c>ipv6_addr_in</c> when none were given, the fleet's resolvers and blocked
/// prefixes), calls <see cref="EgressPolicy.FromConfig"/> with its uplink's addresses and applies the result with
/// <see cref="EgressFirewall"/>. Null lists take the defaults of <see cref="EgressPolicy"/>.
/// </remarks>
public sealed record EgressConfig(
    string UplinkInterface,
    string WireGuardInterface,
    string? PublicIPv4 = null,
    string? PublicIPv6 = null,
    string? PoolIPv4 = null,
    string? PoolIPv6 = null,
    string? GatewayIPv4 = null,
    string? GatewayIPv6 = null,
    IReadOnlyList<string>? BlockedPrefixes = null,
    IReadOnlyList<string>? ManagementEndpoints = null,
    int DnsPort = 53,
    bool AllowGatewayPing = true,
    int? AttestationPort = null);

/// <summary>
/// A validated egress policy: only <see cref="FromConfig"/> makes one, so an invalid policy cannot reach the kernel.
/// </summary>
/// <param name="UplinkInterface">Where customer traffic leaves (and the internet comes in).</param>
/// <param name="WireGuardInterface">Where customer traffic arrives.</param>
/// <param name="PoolIPv4">Customers' IPv4 tunnel addresses (default 10.64.0.0/10).</param>
/// <param name="PoolIPv6">Customers' IPv6 tunnel addresses (default fc00:bbbb:bbbb:bb01::/64).</param>
/// <param name="GatewayIPv4">The relay's address in the IPv4 pool, where DNS answers (default 10.64.0.1).</param>
/// <param name="GatewayIPv6">The relay's address in the IPv6 pool (default fc00:bbbb:bbbb:bb01::1).</param>
/// <param name="PublicIPv4">SNAT target for the IPv4 pool; null masquerades to the uplink's primary address.</param>
/// <param name="PublicIPv6">NAT66 target for the IPv6 pool; null masquerades.</param>
/// <param name="Blocked">Destinations customers never reach: the operator's private/reserved ranges, the management
/// endpoints and the uplink's own subnets, both families.</param>
/// <param name="DnsPort">The port allowed (UDP and TCP) to the gateway addresses.</param>
/// <param name="AllowGatewayPing">ICMP echo to the gateway addresses (the lab's client pings it).</param>
/// <param name="AttestationPort">The TCP port of the in-tunnel attestation service on the gateway addresses (issue 19), when the
/// relay runs it (it has a TPM); null: none, and only DNS is open there.</param>
public sealed record EgressPolicy(
    string UplinkInterface,
    string WireGuardInterface,
    IPNetwork PoolIPv4,
    IPNetwork PoolIPv6,
    IPAddress GatewayIPv4,
    IPAddress GatewayIPv6,
    IPAddress? PublicIPv4,
    IPAddress? PublicIPv6,
    IReadOnlyList<IPNetwork> Blocked,
    ushort DnsPort,
    bool AllowGatewayPing,
    ushort? AttestationPort = null)
{
    /// <summary>Blocked prefixes accepted in one policy (the benchmark applies 10 000). Arbitrary limit.</summary>
    public const int MaxBlockedPrefixes = 100_000;

    /// <summary>Default IPv4 pool, as Mullvad's relays use.</summary>
    public static readonly IPNetwork DefaultPoolIPv4 = IPNetwork.Parse("10.64.0.0/10");
    /// <summary>Default IPv6 pool.</summary>
    public static readonly IPNetwork DefaultPoolIPv6 = IPNetwork.Parse("fc00:bbbb:bbbb:bb01::/64");
    /// <summary>Default IPv4 gateway.</summary>
    public static readonly IPAddress DefaultGatewayIPv4 = IPAddress.Parse("10.64.0.1");
    /// <summary>Default IPv6 gateway.</summary>
    public static readonly IPAddress DefaultGatewayIPv6 = IPAddress.Parse("fc00:bbbb:bbbb:bb01::1");

    /// <summary>
    /// Private and reserved ranges blocked by default (issue 15): RFC 1918, 100.64/10 (CGNAT), 169.254/16,
    /// fc00::/7 (the IPv6 pool inside it is dropped by the pool-to-pool rule anyway), fe80::/10. The list is
    /// Tabula.Fleet.Protocol's <see cref="Tabula.Fleet.Protocol.RelayAddresses.DefaultBlockedPrefixes"/>: the controller
    /// refuses a relay public address inside it at provision.
    /// </summary>
    public static IReadOnlyList<string> DefaultBlockedPrefixes => Tabula.Fleet.Protocol.RelayAddresses.DefaultBlockedPrefixes;

    /// <summary>
    /// Validates <paramref name="config"/> against the uplink's addresses (as rtnetlink lists them) and returns the
    /// policy; throws <see cref="EgressPolicyException"/> before anything is applied.
    /// </summary>
    public static EgressPolicy FromConfig(EgressConfig config, IReadOnlyList<InterfaceAddress> uplinkAddresses)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(uplinkAddresses);
        CheckInterface(config.UplinkInterface, "uplink interface");
        CheckInterface(config.WireGuardInterface, "WireGuard interface");
        if (config.UplinkInterface == config.WireGuardInterface)
            Refuse(EgressPolicyError.InvalidInterface, "uplink and WireGuard interfaces are the same");
        if (config.DnsPort is <= 0 or > ushort.MaxValue)
            Refuse(EgressPolicyError.InvalidPort, $"DNS port {config.DnsPort}");

        IPNetwork pool4 = config.PoolIPv4 is null ? DefaultPoolIPv4 : Prefix(config.PoolIPv4, "IPv4 pool", AddressFamily.InterNetwork);
        IPNetwork pool6 = config.PoolIPv6 is null ? DefaultPoolIPv6 : Prefix(config.PoolIPv6, "IPv6 pool", AddressFamily.InterNetworkV6);
        IPAddress gateway4 = config.GatewayIPv4 is null ? DefaultGatewayIPv4 : Address(config.GatewayIPv4, "IPv4 gateway", AddressFamily.InterNetwork);
        IPAddress gateway6 = config.GatewayIPv6 is null ? DefaultGatewayIPv6 : Address(config.GatewayIPv6, "IPv6 gateway", AddressFamily.InterNetworkV6);
        if (!pool4.Contains(gateway4))
            Refuse(EgressPolicyError.GatewayOutsidePool, "the IPv4 gateway is not in the IPv4 pool");
        if (!pool6.Contains(gateway6))
            Refuse(EgressPolicyError.GatewayOutsidePool, "the IPv6 gateway is not in the IPv6 pool");

        IPAddress? public4 = config.PublicIPv4 is null ? null : Address(config.PublicIPv4, "public IPv4", AddressFamily.InterNetwork);
        IPAddress? public6 = config.PublicIPv6 is null ? null : Address(config.PublicIPv6, "public IPv6", AddressFamily.InterNetworkV6);
        foreach (var (address, name) in new[] { (public4, "public IPv4"), (public6, "public IPv6") })
            if (address is not null && !uplinkAddresses.Any(a => a.Address.Equals(address)))
                Refuse(EgressPolicyError.PublicAddressNotOnUplink, $"the {name} address is not assigned to {config.UplinkInterface}");

        var linkSubnets = uplinkAddresses
            .Where(a => !a.Address.IsIPv6LinkLocal)
            .Select(a => new IPNetwork(Mask(a.Address, a.PrefixLength), a.PrefixLength)).Distinct().ToList();
        var management = (config.ManagementEndpoints ?? []).Select(m => Prefix(m, "management endpoint", null)).ToList();
        IReadOnlyList<string> blockedText = config.BlockedPrefixes ?? DefaultBlockedPrefixes;
        if (blockedText.Count + management.Count > MaxBlockedPrefixes)
            Refuse(EgressPolicyError.TooManyPrefixes, $"{blockedText.Count + management.Count} blocked prefixes, at most {MaxBlockedPrefixes}");
        var blocked = blockedText.Select(b => Prefix(b, "blocked prefix", null)).ToList();

        foreach (IPNetwork pool in new[] { pool4, pool6 })
        {
            if (linkSubnets.Any(s => Overlaps(s, pool)))
                Refuse(EgressPolicyError.OverlappingPool, $"a tunnel pool overlaps a subnet of {config.UplinkInterface}");
            if (management.Any(m => Overlaps(m, pool)))
                Refuse(EgressPolicyError.OverlappingPool, "a tunnel pool overlaps a management endpoint");
            if ((public4 is not null && pool.Contains(public4)) || (public6 is not null && pool.Contains(public6)))
                Refuse(EgressPolicyError.OverlappingPool, "a public address lies inside a tunnel pool");
        }

        return new EgressPolicy(config.UplinkInterface, config.WireGuardInterface, pool4, pool6, gateway4, gateway6, public4, public6,
            [.. blocked, .. management, .. linkSubnets], (ushort)config.DnsPort, config.AllowGatewayPing,
            config.AttestationPort is { } port ? checked((ushort)port) : null);
    }

    static bool Overlaps(IPNetwork a, IPNetwork b) =>
        a.BaseAddress.AddressFamily == b.BaseAddress.AddressFamily && (a.Contains(b.BaseAddress) || b.Contains(a.BaseAddress));

    static void CheckInterface(string name, string what)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 15 || name is "." or ".."
            || name.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || c > 0x7e || c < 0x21))
            Refuse(EgressPolicyError.InvalidInterface, $"{what} is not a Linux interface name");
    }

    static IPNetwork Prefix(string text, string what, AddressFamily? family)
    {
        // A bare address is a host prefix (a management endpoint is usually one address).
        string candidate = text.Contains('/') ? text : text + (text.Contains(':') ? "/128" : "/32");
        // TryParse masks host bits away silently; "10.0.0.1/8" is a typo to refuse, not 10.0.0.0/8.
        if (!IPNetwork.TryParse(candidate, out IPNetwork prefix) || (family is { } f && prefix.BaseAddress.AddressFamily != f)
            || !IPAddress.Parse(candidate[..candidate.IndexOf('/')]).Equals(prefix.BaseAddress))
            Refuse(EgressPolicyError.MalformedPrefix, $"a {what} is not a{(family is null ? "n" : family == AddressFamily.InterNetwork ? "n IPv4" : "n IPv6")} prefix");
        return prefix;
    }

    static IPAddress Address(string text, string what, AddressFamily family)
    {
        if (!IPAddress.TryParse(text, out IPAddress? address) || address.AddressFamily != family)
            Refuse(EgressPolicyError.MalformedPrefix, $"the {what} is not an {(family == AddressFamily.InterNetwork ? "IPv4" : "IPv6")} address");
        return address;
    }

    static IPAddress Mask(IPAddress address, int prefixLength)
    {
        byte[] bytes = address.GetAddressBytes();
        for (int i = 0; i < bytes.Length; i++)
        {
            int keep = Math.Clamp(prefixLength - i * 8, 0, 8);
            bytes[i] &= (byte)(0xff << (8 - keep));
        }
        return new IPAddress(bytes);
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    static void Refuse(EgressPolicyError reason, string detail) => throw new EgressPolicyException(reason, detail);
}

using System.Net;

namespace Tabula.Relay.Dns;

/// <summary>
/// What the in-tunnel resolver serves and where it forwards. The listen addresses and client networks come from the
/// relay's configuration (the pools' gateway addresses and prefixes); the upstream resolvers from the fleet's relay
/// configuration: there is no built-in upstream. <see cref="Validate"/> runs in <see cref="DnsForwarder.Start(DnsOptions, CancellationToken)"/>.
/// </summary>
public sealed record DnsOptions
{
    /// <summary>The gateway addresses to listen on (UDP and TCP); never a wildcard address.</summary>
    public required IReadOnlyList<IPAddress> ListenAddresses { get; init; }

    /// <summary>The only sources answered (the tunnel pools); a query from anywhere else gets no reply at all.</summary>
    public required IReadOnlyList<IPNetwork> ClientNetworks { get; init; }

    /// <summary>Upstream resolvers, tried in order from the last one that answered.</summary>
    public required IReadOnlyList<IPEndPoint> Upstreams { get; init; }

    public int Port { get; init; } = 53;

    public int CacheEntries { get; init; } = 10_000;
    public long CacheBytes { get; init; } = 16 << 20;
    public TimeSpan MinTtl { get; init; } = TimeSpan.Zero;
    public TimeSpan MaxTtl { get; init; } = TimeSpan.FromDays(1);

    /// <summary>RFC 2308 §5 suggests one to three hours at most for negative answers.</summary>
    public TimeSpan MaxNegativeTtl { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Queries being answered at once (UDP and TCP together); a UDP query over the bound is dropped (the client retries).</summary>
    public int MaxInFlight { get; init; } = 256;
    public int MaxTcpConnections { get; init; } = 64;

    /// <summary>One attempt at one upstream (UDP, or the TCP retry after a truncated answer).</summary>
    public TimeSpan UpstreamTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>A TCP client that sends nothing for this long is disconnected.</summary>
    public TimeSpan TcpIdleTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Mullvad's gateway addresses, the relay's defaults (docs/relay.md).</summary>
    public static IReadOnlyList<IPAddress> DefaultListenAddresses { get; } =
        [IPAddress.Parse("10.64.0.1"), IPAddress.Parse("fc00:bbbb:bbbb:bb01::1")];

    /// <summary>Mullvad's tunnel pools, the relay's defaults.</summary>
    public static IReadOnlyList<IPNetwork> DefaultClientNetworks { get; } =
        [IPNetwork.Parse("10.64.0.0/10"), IPNetwork.Parse("fc00:bbbb:bbbb:bb01::/64")];

    /// <summary>Throws <see cref="ArgumentException"/> naming the first unusable setting (configuration, not customer data).</summary>
    public void Validate()
    {
        if (ListenAddresses.Count == 0)
            throw new ArgumentException("no listen address", nameof(ListenAddresses));
        foreach (var address in ListenAddresses)
            if (address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
                throw new ArgumentException("a wildcard listen address would answer on every address of the relay", nameof(ListenAddresses));
        if (ClientNetworks.Count == 0)
            throw new ArgumentException("no client network: nobody could be answered", nameof(ClientNetworks));
        if (Upstreams.Count == 0)
            throw new ArgumentException("no upstream resolver (they come from the fleet's relay configuration)", nameof(Upstreams));
        foreach (var upstream in Upstreams)
        {
            if (upstream.Port == 0)
                throw new ArgumentException($"upstream {upstream} has no port", nameof(Upstreams));
            if (ClientNetworks.Any(n => n.Contains(upstream.Address)) || ListenAddresses.Contains(upstream.Address))
                throw new ArgumentException($"upstream {upstream} is inside a client network or is this resolver", nameof(Upstreams));
        }
        if (Port is < 1 or > 65535)
            throw new ArgumentException("port out of range", nameof(Port));
        if (CacheEntries < 0 || CacheBytes < 0 || MaxInFlight < 1 || MaxTcpConnections < 0)
            throw new ArgumentException("cache and concurrency bounds must be positive");
        if (MinTtl < TimeSpan.Zero || MaxTtl < MinTtl || MaxNegativeTtl < TimeSpan.Zero)
            throw new ArgumentException("TTL clamps must satisfy 0 <= min <= max");
        if (UpstreamTimeout <= TimeSpan.Zero || TcpIdleTimeout <= TimeSpan.Zero)
            throw new ArgumentException("timeouts must be positive");
    }
}

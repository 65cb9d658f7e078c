namespace Tabula.Linux.Netlink.Netfilter;

/// <summary>Bounds applied to nf_tables and ctnetlink requests and replies, with where they come from.</summary>
public static class NetfilterLimits
{
    /// <summary>NFT_NAME_MAXLEN (include/uapi/linux/netfilter/nf_tables.h), the NUL included.</summary>
    public const int MaxNameBytes = 256;

    /// <summary>NFT_USERDATA_MAXLEN: rule comments travel in user data.</summary>
    public const int MaxUserDataBytes = 256;

    /// <summary>NFT_DATA_VALUE_MAXLEN: the largest constant a cmp, bitwise or set key carries.</summary>
    public const int MaxDataValueBytes = 64;

    /// <summary>
    /// Largest batch sent as one datagram. 10 000 prefixes of either family make about 1 MiB; the kernel takes
    /// what the socket's send buffer allows, which is raised to fit. Arbitrary limit, may be increased.
    /// </summary>
    public const int MaxBatchBytes = 32 * 1024 * 1024;

    /// <summary>
    /// Set elements packed into one NEWSETELEM message, kept well under
    /// <see cref="Limits.NetlinkMaxRequestBytes"/> (an IPv6 interval pair is about 80 bytes).
    /// </summary>
    public const int MaxElementsPerMessage = 128;

    /// <summary>Objects (tables, chains, rules, sets, set elements, conntrack entries) accepted from one dump. Arbitrary limit.</summary>
    public const int MaxDumpObjects = 1_000_000;

    /// <summary>Expressions accepted in one rule read back. nft rules rarely exceed 20. Arbitrary limit.</summary>
    public const int MaxExpressionsPerRule = 128;

    /// <summary>How long a batch waits for the kernel's acknowledgements before giving up.</summary>
    public static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(30);
}

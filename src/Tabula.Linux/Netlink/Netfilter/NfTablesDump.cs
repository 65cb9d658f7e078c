namespace Tabula.Linux.Netlink.Netfilter;

/// <summary>A table as GETTABLE reports it.</summary>
public sealed record NfTableInfo(NfTablesFamily Family, string Name, ulong Handle, uint Use);

/// <summary>A chain as GETCHAIN reports it; <see cref="Base"/> is null for a regular chain.</summary>
public sealed record NfChainInfo(NfTablesFamily Family, string Table, string Name, ulong Handle, NfBaseChain? Base);

/// <summary>Packets and bytes of a counter expression.</summary>
public readonly record struct NfCounterValue(ulong Packets, ulong Bytes);

/// <summary>
/// A rule as GETRULE reports it: the expression type names in order, nft's comment, and the rule's counter
/// (the last counter expression), which is how totals are read.
/// </summary>
public sealed record NfRuleInfo(NfTablesFamily Family, string Table, string Chain, ulong Handle,
    IReadOnlyList<string> Expressions, string? Comment, NfCounterValue? Counter);

/// <summary>A set as GETSET reports it.</summary>
public sealed record NfSetInfo(NfTablesFamily Family, string Table, string Name, ulong Handle, uint Flags, uint KeyType, uint KeyLength)
{
    /// <summary>NFT_SET_INTERVAL.</summary>
    public bool Interval => (Flags & NfTablesWire.SetInterval) != 0;

    /// <summary>NFT_SET_ANONYMOUS.</summary>
    public bool Anonymous => (Flags & NfTablesWire.SetAnonymous) != 0;
}

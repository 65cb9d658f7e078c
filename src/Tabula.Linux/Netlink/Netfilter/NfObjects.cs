using Tabula.Linux.Netlink.Netfilter.Expressions;

namespace Tabula.Linux.Netlink.Netfilter;

/// <summary>An nf_tables table: a family and a name, the unit that is replaced and removed as a whole.</summary>
public sealed record NfTable(NfTablesFamily Family, string Name);

/// <summary>What makes a chain a base chain: its type, the hook it is attached to, its priority and default policy.</summary>
public sealed record NfBaseChain(NfChainType Type, NfHook Hook, int Priority, NfVerdict Policy = NfVerdict.Accept)
{
    /// <summary>The kernel's name for the chain type.</summary>
    public string TypeName => Type switch { NfChainType.Nat => "nat", NfChainType.Route => "route", _ => "filter" };
}

/// <summary>A chain; a base chain when <see cref="Base"/> is set, else reachable only by jump/goto.</summary>
public sealed record NfChain(string Name, NfBaseChain? Base = null);

/// <summary>A rule appended to <see cref="Chain"/>; <see cref="Comment"/> travels as nft's comment user data.</summary>
public sealed record NfRule(string Chain, IReadOnlyList<NfExpression> Expressions, string? Comment = null);

/// <summary>Key data types of sets (nft's datatype numbers, informational to the kernel but read by nft).</summary>
public enum NfSetKeyType : uint
{
    /// <summary>TYPE_IPADDR: 4-byte IPv4 addresses.</summary>
    IPv4Address = 7,
    /// <summary>TYPE_IP6ADDR: 16-byte IPv6 addresses.</summary>
    IPv6Address = 8,
    /// <summary>TYPE_INET_PROTOCOL: 1-byte transport protocol numbers.</summary>
    InetProtocol = 12,
    /// <summary>TYPE_INET_SERVICE: 2-byte ports.</summary>
    InetService = 13,
}

/// <summary>One set element key; with <see cref="IntervalEnd"/> it closes the interval the element before opened.</summary>
public sealed record NfSetElement(byte[] Key, bool IntervalEnd = false);

/// <summary>
/// A set of keys a lookup expression tests against. An anonymous set is bound to the one rule that uses it and
/// gets a kernel-chosen name; its elements can only be given when it is made.
/// </summary>
public sealed record NfSet(string Name, NfSetKeyType KeyType, IReadOnlyList<NfSetElement> Elements, bool Interval = false,
    bool Anonymous = false)
{
    /// <summary>Key length in bytes for <see cref="KeyType"/>.</summary>
    public int KeyLength => KeyType switch
    {
        NfSetKeyType.IPv4Address => 4, NfSetKeyType.IPv6Address => 16, NfSetKeyType.InetProtocol => 1, _ => 2,
    };
}

/// <summary>A whole table: what one owner creates, reads back, replaces and removes.</summary>
public sealed record NfRuleset(NfTable Table, IReadOnlyList<NfSet> Sets, IReadOnlyList<NfChain> Chains, IReadOnlyList<NfRule> Rules);

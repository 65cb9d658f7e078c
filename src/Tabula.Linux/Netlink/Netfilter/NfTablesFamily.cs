namespace Tabula.Linux.Netlink.Netfilter;

/// <summary>nf_tables table families (NFPROTO_* in include/uapi/linux/netfilter.h).</summary>
public enum NfTablesFamily : byte
{
    /// <summary>NFPROTO_UNSPEC: every family (dumps only).</summary>
    Unspecified = 0,
    /// <summary>NFPROTO_INET: IPv4 and IPv6 in one table.</summary>
    Inet = 1,
    /// <summary>NFPROTO_IPV4.</summary>
    IPv4 = 2,
    /// <summary>NFPROTO_IPV6.</summary>
    IPv6 = 10,
}

/// <summary>Netfilter hooks of the inet family (enum nf_inet_hooks).</summary>
public enum NfHook : uint
{
    /// <summary>NF_INET_PRE_ROUTING.</summary>
    Prerouting = 0,
    /// <summary>NF_INET_LOCAL_IN.</summary>
    Input = 1,
    /// <summary>NF_INET_FORWARD.</summary>
    Forward = 2,
    /// <summary>NF_INET_LOCAL_OUT.</summary>
    Output = 3,
    /// <summary>NF_INET_POST_ROUTING.</summary>
    Postrouting = 4,
}

/// <summary>Base chain types (the kernel's chain type names).</summary>
public enum NfChainType
{
    /// <summary>"filter".</summary>
    Filter,
    /// <summary>"nat": sees the first packet of each connection only.</summary>
    Nat,
    /// <summary>"route": re-routes when marks or addresses change.</summary>
    Route,
}

/// <summary>Verdicts (NF_DROP/NF_ACCEPT in netfilter.h, NFT_* in nf_tables.h).</summary>
public enum NfVerdict
{
    /// <summary>NF_DROP.</summary>
    Drop = 0,
    /// <summary>NF_ACCEPT.</summary>
    Accept = 1,
    /// <summary>NFT_CONTINUE.</summary>
    Continue = -1,
    /// <summary>NFT_BREAK.</summary>
    Break = -2,
    /// <summary>NFT_JUMP (needs a chain).</summary>
    Jump = -3,
    /// <summary>NFT_GOTO (needs a chain).</summary>
    Goto = -4,
    /// <summary>NFT_RETURN.</summary>
    Return = -5,
}

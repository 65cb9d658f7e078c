namespace Tabula.Linux.Netlink.Netfilter.Expressions;

/// <summary>Reject kinds (enum nft_reject_types).</summary>
public enum NfRejectType : uint
{
    /// <summary>NFT_REJECT_ICMP_UNREACH (family-specific code).</summary>
    IcmpUnreachable = 0,
    /// <summary>NFT_REJECT_TCP_RST.</summary>
    TcpReset = 1,
    /// <summary>NFT_REJECT_ICMPX_UNREACH: family-independent code, for inet tables.</summary>
    IcmpxUnreachable = 2,
}

/// <summary>"reject": drops the packet and answers with an ICMP error or a TCP reset.</summary>
/// <param name="Type">What to answer with.</param>
/// <param name="Code">For ICMPX: 0 no route, 1 port unreachable, 2 host unreachable, 3 administratively prohibited.</param>
public sealed record NfReject(NfRejectType Type, byte Code) : NfExpression
{
    /// <inheritdoc />
    public override string Name => "reject";

    internal override void EncodeData(NetlinkMessageBuilder message)
    {
        message.AddBigEndian(1, (uint)Type);  // NFTA_REJECT_TYPE
        message.AddAttribute(2, [Code]);      // NFTA_REJECT_ICMP_CODE (u8)
    }
}

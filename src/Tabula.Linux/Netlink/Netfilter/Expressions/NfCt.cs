namespace Tabula.Linux.Netlink.Netfilter.Expressions;

/// <summary>Conntrack keys used here (enum nft_ct_keys).</summary>
public enum NfCtKey : uint
{
    /// <summary>NFT_CT_STATE: a 4-byte bitmask of <see cref="NfCtState"/>.</summary>
    State = 0,
}

/// <summary>Bits of NFT_CT_STATE (NF_CT_STATE_BIT and IP_CT_* in nf_conntrack_common.h).</summary>
[Flags]
public enum NfCtState : uint
{
    /// <summary>NF_CT_STATE_INVALID_BIT.</summary>
    Invalid = 1,
    /// <summary>IP_CT_ESTABLISHED.</summary>
    Established = 2,
    /// <summary>IP_CT_RELATED.</summary>
    Related = 4,
    /// <summary>IP_CT_NEW.</summary>
    New = 8,
    /// <summary>NF_CT_STATE_UNTRACKED_BIT.</summary>
    Untracked = 64,
}

/// <summary>"ct": loads a conntrack value into a register.</summary>
public sealed record NfCt(NfCtKey Key, NfRegister Destination = NfRegister.R1) : NfExpression
{
    /// <inheritdoc />
    public override string Name => "ct";

    internal override void EncodeData(NetlinkMessageBuilder message)
    {
        message.AddBigEndian(1, (uint)Destination); // NFTA_CT_DREG
        message.AddBigEndian(2, (uint)Key);         // NFTA_CT_KEY
    }
}

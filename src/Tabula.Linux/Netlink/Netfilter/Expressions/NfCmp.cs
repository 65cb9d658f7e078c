namespace Tabula.Linux.Netlink.Netfilter.Expressions;

/// <summary>Relational operators (enum nft_cmp_ops).</summary>
public enum NfCmpOperator : uint
{
    /// <summary>NFT_CMP_EQ.</summary>
    Equal = 0,
    /// <summary>NFT_CMP_NEQ.</summary>
    NotEqual = 1,
    /// <summary>NFT_CMP_LT.</summary>
    Less = 2,
    /// <summary>NFT_CMP_LTE.</summary>
    LessOrEqual = 3,
    /// <summary>NFT_CMP_GT.</summary>
    Greater = 4,
    /// <summary>NFT_CMP_GTE.</summary>
    GreaterOrEqual = 5,
}

/// <summary>"cmp": compares a register with a constant; a false comparison ends the rule (NFT_BREAK).</summary>
public sealed record NfCmp(NfCmpOperator Operator, byte[] Data, NfRegister Source = NfRegister.R1) : NfExpression
{
    /// <inheritdoc />
    public override string Name => "cmp";

    internal override void EncodeData(NetlinkMessageBuilder message)
    {
        message.AddBigEndian(1, (uint)Source);   // NFTA_CMP_SREG
        message.AddBigEndian(2, (uint)Operator); // NFTA_CMP_OP
        AddData(message, 3, Data);               // NFTA_CMP_DATA
    }
}

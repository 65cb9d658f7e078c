namespace Tabula.Linux.Netlink.Netfilter.Expressions;

/// <summary>
/// "lookup": the rule goes on only when the register's value is in the set (or, inverted, is not). A set made in the
/// same batch is found by its transaction id too, which anonymous sets ("__set%d") need.
/// </summary>
public sealed record NfLookup(string SetName, NfRegister Source = NfRegister.R1, bool Invert = false) : NfExpression
{
    /// <inheritdoc />
    public override string Name => "lookup";

    /// <summary>NFTA_LOOKUP_SET_ID of the set in this batch; filled in by <see cref="NfTablesBatch"/>.</summary>
    internal uint? SetId { get; init; }

    internal override void EncodeData(NetlinkMessageBuilder message)
    {
        message.AddString(1, SetName);              // NFTA_LOOKUP_SET
        message.AddBigEndian(2, (uint)Source);      // NFTA_LOOKUP_SREG
        if (SetId is { } id)
            message.AddBigEndian(4, id);            // NFTA_LOOKUP_SET_ID
        if (Invert)
            message.AddBigEndian(5, 1u);            // NFTA_LOOKUP_FLAGS = NFT_LOOKUP_F_INV
    }
}

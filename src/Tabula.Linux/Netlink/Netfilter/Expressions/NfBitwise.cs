namespace Tabula.Linux.Netlink.Netfilter.Expressions;

/// <summary>"bitwise" (NFT_BITWISE_MASK_XOR): destination = (source &amp; mask) ^ xor over <see cref="Length"/> bytes.</summary>
public sealed record NfBitwise(uint Length, byte[] Mask, byte[] Xor, NfRegister Source = NfRegister.R1,
    NfRegister Destination = NfRegister.R1) : NfExpression
{
    /// <inheritdoc />
    public override string Name => "bitwise";

    internal override void EncodeData(NetlinkMessageBuilder message)
    {
        if (Mask.Length != Length || Xor.Length != Length)
            throw new ArgumentException($"bitwise mask and xor must be {Length} bytes");
        message.AddBigEndian(1, (uint)Source);      // NFTA_BITWISE_SREG
        message.AddBigEndian(2, (uint)Destination); // NFTA_BITWISE_DREG
        message.AddBigEndian(3, Length);            // NFTA_BITWISE_LEN
        AddData(message, 4, Mask);                  // NFTA_BITWISE_MASK
        AddData(message, 5, Xor);                   // NFTA_BITWISE_XOR
    }
}

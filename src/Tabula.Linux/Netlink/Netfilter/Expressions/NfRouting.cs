namespace Tabula.Linux.Netlink.Netfilter.Expressions;

/// <summary>Routing keys (enum nft_rt_keys).</summary>
public enum NfRtKey : uint
{
    /// <summary>NFT_RT_TCPMSS: the TCP MSS the route's path MTU allows, 2 bytes in host order ("rt mtu").</summary>
    TcpMss = 3,
}

/// <summary>"rt": loads a property of the packet's route into a register.</summary>
public sealed record NfRt(NfRtKey Key, NfRegister Destination = NfRegister.R1) : NfExpression
{
    /// <inheritdoc />
    public override string Name => "rt";

    internal override void EncodeData(NetlinkMessageBuilder message)
    {
        message.AddBigEndian(1, (uint)Destination); // NFTA_RT_DREG
        message.AddBigEndian(2, (uint)Key);         // NFTA_RT_KEY
    }
}

/// <summary>Byte order conversions (enum nft_byteorder_ops).</summary>
public enum NfByteorderOperator : uint
{
    /// <summary>NFT_BYTEORDER_NTOH.</summary>
    NetworkToHost = 0,
    /// <summary>NFT_BYTEORDER_HTON.</summary>
    HostToNetwork = 1,
}

/// <summary>"byteorder": converts <see cref="Length"/> bytes of <see cref="Size"/>-byte words between host and network order.</summary>
public sealed record NfByteorder(NfByteorderOperator Operator, uint Length, uint Size, NfRegister Source = NfRegister.R1,
    NfRegister Destination = NfRegister.R1) : NfExpression
{
    /// <inheritdoc />
    public override string Name => "byteorder";

    internal override void EncodeData(NetlinkMessageBuilder message)
    {
        message.AddBigEndian(1, (uint)Source);      // NFTA_BYTEORDER_SREG
        message.AddBigEndian(2, (uint)Destination); // NFTA_BYTEORDER_DREG
        message.AddBigEndian(3, (uint)Operator);    // NFTA_BYTEORDER_OP
        message.AddBigEndian(4, Length);            // NFTA_BYTEORDER_LEN
        message.AddBigEndian(5, Size);              // NFTA_BYTEORDER_SIZE
    }
}

/// <summary>
/// "exthdr" writing a TCP option field (NFT_EXTHDR_OP_TCPOPT with a source register): e.g. the MSS, option kind 2,
/// offset 2, length 2. Packets without the option pass unchanged.
/// </summary>
public sealed record NfTcpOptionWrite(byte OptionKind, uint Offset, uint Length, NfRegister Source = NfRegister.R1) : NfExpression
{
    /// <inheritdoc />
    public override string Name => "exthdr";

    internal override void EncodeData(NetlinkMessageBuilder message)
    {
        message.AddAttribute(2, [OptionKind]);     // NFTA_EXTHDR_TYPE (u8)
        message.AddBigEndian(3, Offset);           // NFTA_EXTHDR_OFFSET
        message.AddBigEndian(4, Length);           // NFTA_EXTHDR_LEN
        message.AddBigEndian(6, 1u);               // NFTA_EXTHDR_OP = NFT_EXTHDR_OP_TCPOPT
        message.AddBigEndian(7, (uint)Source);     // NFTA_EXTHDR_SREG
    }
}

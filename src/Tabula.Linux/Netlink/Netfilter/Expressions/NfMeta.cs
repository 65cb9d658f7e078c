namespace Tabula.Linux.Netlink.Netfilter.Expressions;

/// <summary>Packet metadata keys used here (enum nft_meta_keys).</summary>
public enum NfMetaKey : uint
{
    /// <summary>NFT_META_IIFNAME: input interface name, 16 bytes (IFNAMSIZ).</summary>
    InputInterfaceName = 6,
    /// <summary>NFT_META_OIFNAME: output interface name, 16 bytes.</summary>
    OutputInterfaceName = 7,
    /// <summary>NFT_META_NFPROTO: the packet's family, 1 byte (NFPROTO_IPV4/IPV6).</summary>
    NfProto = 15,
    /// <summary>NFT_META_L4PROTO: the transport protocol number, 1 byte.</summary>
    L4Proto = 16,
}

/// <summary>"meta": loads packet metadata into a register.</summary>
public sealed record NfMeta(NfMetaKey Key, NfRegister Destination = NfRegister.R1) : NfExpression
{
    /// <inheritdoc />
    public override string Name => "meta";

    internal override void EncodeData(NetlinkMessageBuilder message)
    {
        message.AddBigEndian(1, (uint)Destination); // NFTA_META_DREG
        message.AddBigEndian(2, (uint)Key);         // NFTA_META_KEY
    }
}

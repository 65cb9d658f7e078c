namespace Tabula.Linux.Netlink.Netfilter.Expressions;

/// <summary>Where a payload offset counts from (enum nft_payload_bases).</summary>
public enum NfPayloadBase : uint
{
    /// <summary>NFT_PAYLOAD_LL_HEADER.</summary>
    LinkLayer = 0,
    /// <summary>NFT_PAYLOAD_NETWORK_HEADER: the IPv4 or IPv6 header.</summary>
    Network = 1,
    /// <summary>NFT_PAYLOAD_TRANSPORT_HEADER: TCP, UDP, ICMP.</summary>
    Transport = 2,
}

/// <summary>"payload": loads <see cref="Length"/> bytes at <see cref="Offset"/> from a header into a register.</summary>
public sealed record NfPayload(NfPayloadBase Base, uint Offset, uint Length, NfRegister Destination = NfRegister.R1) : NfExpression
{
    /// <inheritdoc />
    public override string Name => "payload";

    internal override void EncodeData(NetlinkMessageBuilder message)
    {
        message.AddBigEndian(1, (uint)Destination); // NFTA_PAYLOAD_DREG
        message.AddBigEndian(2, (uint)Base);        // NFTA_PAYLOAD_BASE
        message.AddBigEndian(3, Offset);            // NFTA_PAYLOAD_OFFSET
        message.AddBigEndian(4, Length);            // NFTA_PAYLOAD_LEN
    }
}

namespace Tabula.Linux.Netlink.Netfilter.Expressions;

/// <summary>NAT types (enum nft_nat_types).</summary>
public enum NfNatType : uint
{
    /// <summary>NFT_NAT_SNAT.</summary>
    Source = 0,
    /// <summary>NFT_NAT_DNAT.</summary>
    Destination = 1,
}

/// <summary>
/// "nat": rewrites the connection's source (or destination) to the address in <see cref="AddressRegister"/>.
/// <see cref="Family"/> is IPv4 or IPv6 (NAT66); in an inet table the rule must match that family first.
/// </summary>
public sealed record NfNat(NfNatType Type, NfTablesFamily Family, NfRegister AddressRegister = NfRegister.R1) : NfExpression
{
    /// <inheritdoc />
    public override string Name => "nat";

    internal override void EncodeData(NetlinkMessageBuilder message)
    {
        if (Family is not (NfTablesFamily.IPv4 or NfTablesFamily.IPv6))
            throw new ArgumentException("NAT family is IPv4 or IPv6");
        message.AddBigEndian(1, (uint)Type);            // NFTA_NAT_TYPE
        message.AddBigEndian(2, (uint)Family);          // NFTA_NAT_FAMILY
        message.AddBigEndian(3, (uint)AddressRegister); // NFTA_NAT_REG_ADDR_MIN (the kernel sets NF_NAT_RANGE_MAP_IPS)
    }
}

/// <summary>"masq": source NAT to the primary address of the output interface.</summary>
public sealed record NfMasquerade : NfExpression
{
    /// <inheritdoc />
    public override string Name => "masq";

    internal override void EncodeData(NetlinkMessageBuilder message) { }
}

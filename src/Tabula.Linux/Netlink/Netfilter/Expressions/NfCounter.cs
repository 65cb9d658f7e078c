namespace Tabula.Linux.Netlink.Netfilter.Expressions;

/// <summary>"counter": counts the packets and bytes that reach it. Read back through a rule dump.</summary>
public sealed record NfCounter : NfExpression
{
    /// <inheritdoc />
    public override string Name => "counter";

    internal override void EncodeData(NetlinkMessageBuilder message)
    {
        message.AddBigEndian(1, 0ul); // NFTA_COUNTER_BYTES
        message.AddBigEndian(2, 0ul); // NFTA_COUNTER_PACKETS
    }
}

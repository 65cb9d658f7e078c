namespace Tabula.Linux.Netlink.Netfilter.Expressions;

/// <summary>"immediate" into the verdict register: accept, drop, jump, ... (the rule's verdict).</summary>
public sealed record NfVerdictExpression(NfVerdict Verdict, string? Chain = null) : NfExpression
{
    /// <inheritdoc />
    public override string Name => "immediate";

    internal override void EncodeData(NetlinkMessageBuilder message)
    {
        bool needsChain = Verdict is NfVerdict.Jump or NfVerdict.Goto;
        if (needsChain != (Chain is not null))
            throw new ArgumentException("jump and goto need a chain; other verdicts take none");
        message.AddBigEndian(1, (uint)NfRegister.Verdict);       // NFTA_IMMEDIATE_DREG
        int data = message.BeginNested(2);                       // NFTA_IMMEDIATE_DATA
        int verdict = message.BeginNested(NfTablesWire.DataVerdict);
        message.AddBigEndian(NfTablesWire.VerdictCode, unchecked((uint)(int)Verdict));
        if (Chain is not null)
            message.AddString(NfTablesWire.VerdictChain, Chain);
        message.EndNested(verdict);
        message.EndNested(data);
    }
}

/// <summary>"immediate" into a data register: loads a constant (an address for NAT, say).</summary>
public sealed record NfImmediateData(byte[] Data, NfRegister Destination = NfRegister.R1) : NfExpression
{
    /// <inheritdoc />
    public override string Name => "immediate";

    internal override void EncodeData(NetlinkMessageBuilder message)
    {
        message.AddBigEndian(1, (uint)Destination); // NFTA_IMMEDIATE_DREG
        AddData(message, 2, Data);                  // NFTA_IMMEDIATE_DATA
    }
}

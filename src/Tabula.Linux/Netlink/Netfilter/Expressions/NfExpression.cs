namespace Tabula.Linux.Netlink.Netfilter.Expressions;

/// <summary>
/// One nf_tables expression of a rule: a kernel expression type name and its NFTA_EXPR_DATA attributes.
/// Expressions pass values through registers; the 16-byte registers NFT_REG_1..4 are enough for every rule here.
/// </summary>
public abstract record NfExpression
{
    /// <summary>The kernel's expression type name ("meta", "cmp", "lookup", ...).</summary>
    public abstract string Name { get; }

    /// <summary>Writes the attributes that go inside NFTA_EXPR_DATA.</summary>
    internal abstract void EncodeData(NetlinkMessageBuilder message);

    /// <summary>Writes NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { ... } }.</summary>
    internal void Encode(NetlinkMessageBuilder message)
    {
        int element = message.BeginNested(NfTablesWire.ListElement);
        message.AddString(NfTablesWire.ExpressionName, Name);
        int data = message.BeginNested(NfTablesWire.ExpressionData);
        EncodeData(message);
        message.EndNested(data);
        message.EndNested(element);
    }

    /// <summary>NFTA_DATA_VALUE nested under <paramref name="type"/>.</summary>
    internal static void AddData(NetlinkMessageBuilder message, ushort type, ReadOnlySpan<byte> value)
    {
        if (value.Length is 0 or > NetfilterLimits.MaxDataValueBytes)
            throw new ArgumentException($"an nf_tables value is 1 to {NetfilterLimits.MaxDataValueBytes} bytes, not {value.Length}");
        int nest = message.BeginNested(type);
        message.AddAttribute(NfTablesWire.DataValue, value);
        message.EndNested(nest);
    }
}

/// <summary>nf_tables registers (enum nft_registers): the verdict register and four 16-byte data registers.</summary>
public enum NfRegister : uint
{
    /// <summary>NFT_REG_VERDICT.</summary>
    Verdict = 0,
    /// <summary>NFT_REG_1.</summary>
    R1 = 1,
    /// <summary>NFT_REG_2.</summary>
    R2 = 2,
    /// <summary>NFT_REG_3.</summary>
    R3 = 3,
    /// <summary>NFT_REG_4.</summary>
    R4 = 4,
}

namespace Tabula.Linux.Netlink.Netfilter;

/// <summary>nf_tables message types and attribute numbers (include/uapi/linux/netfilter/nf_tables.h).</summary>
internal static class NfTablesWire
{
    internal const byte NewTable = 0, GetTable = 1, DeleteTable = 2;
    internal const byte NewChain = 3, GetChain = 4;
    internal const byte NewRule = 6, GetRule = 7;
    internal const byte NewSet = 9, GetSet = 10;
    internal const byte NewSetElement = 12, GetSetElement = 13;

    internal const ushort ListElement = 1;                                      // NFTA_LIST_ELEM

    internal const ushort TableName = 1, TableFlags = 2, TableUse = 3, TableHandle = 4;
    internal const ushort ChainTable = 1, ChainHandle = 2, ChainName = 3, ChainHook = 4, ChainPolicy = 5,
        ChainUse = 6, ChainType = 7;
    internal const ushort HookNumber = 1, HookPriority = 2;
    internal const ushort RuleTable = 1, RuleChain = 2, RuleHandle = 3, RuleExpressions = 4, RuleUserData = 7;
    internal const ushort SetTable = 1, SetName = 2, SetFlags = 3, SetKeyType = 4, SetKeyLength = 5,
        SetDescription = 9, SetId = 10, SetHandle = 16;
    internal const ushort SetDescriptionSize = 1;
    internal const ushort ElementListTable = 1, ElementListSet = 2, ElementListElements = 3, ElementListSetId = 4;
    internal const ushort ElementKey = 1, ElementFlags = 3;
    internal const ushort DataValue = 1, DataVerdict = 2;
    internal const ushort VerdictCode = 1, VerdictChain = 2;
    internal const ushort ExpressionName = 1, ExpressionData = 2;

    internal const uint SetAnonymous = 0x1, SetConstant = 0x2, SetInterval = 0x4;
    internal const uint ElementIntervalEnd = 0x1;

    // Rule comments as nft writes them: a libnftnl udata TLV, NFTNL_UDATA_RULE_COMMENT = 0, string with its NUL.
    internal const byte UserDataRuleComment = 0;
}

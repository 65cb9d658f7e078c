using System.Buffers.Binary;
using System.Text;
using Tabula.Linux.Netlink.Netfilter.Expressions;

namespace Tabula.Linux.Netlink.Netfilter;

/// <summary>
/// An nf_tables transaction: messages between NFNL_MSG_BATCH_BEGIN and NFNL_MSG_BATCH_END, sent as one datagram
/// and applied by the kernel all together or not at all. Every message asks for an acknowledgement, so a refusal
/// is mapped back to the message (and the description given here) that caused it.
/// </summary>
/// <remarks>Sets get a transaction id so that lookups and elements in the same batch can find them before they have a handle.</remarks>
public sealed class NfTablesBatch
{
    readonly List<(byte[] Message, string Operation)> messages = [];
    readonly Dictionary<(NfTable, string), (uint Id, NfSet Set)> sets = [];
    int bytes;

    /// <summary>Messages in the batch (begin and end not counted).</summary>
    public int Count => messages.Count;

    /// <summary>The operations in order, as failures will name them.</summary>
    public IReadOnlyList<string> Operations => messages.ConvertAll(m => m.Operation);

    /// <summary>Adds everything of <paramref name="ruleset"/>: table, sets with their elements, chains, rules.</summary>
    public void Add(NfRuleset ruleset)
    {
        ArgumentNullException.ThrowIfNull(ruleset);
        AddTable(ruleset.Table);
        foreach (NfSet set in ruleset.Sets)
            AddSet(ruleset.Table, set);
        foreach (NfChain chain in ruleset.Chains)
            AddChain(ruleset.Table, chain);
        var perChain = new Dictionary<string, int>();
        foreach (NfRule rule in ruleset.Rules)
        {
            perChain[rule.Chain] = perChain.GetValueOrDefault(rule.Chain) + 1;
            AddRule(ruleset.Table, rule, perChain[rule.Chain]);
        }
    }

    /// <summary>NEWTABLE with NLM_F_CREATE: succeeds when the table exists already.</summary>
    public void AddTable(NfTable table)
    {
        var message = Start(NfTablesWire.NewTable, NetlinkMessageFlags.Create, table.Family);
        message.AddString(NfTablesWire.TableName, CheckName(table.Name));
        message.AddBigEndian(NfTablesWire.TableFlags, 0u);
        Append(message, $"NEWTABLE {Describe(table)}");
    }

    /// <summary>DELTABLE: the table with everything in it. ENOENT when it does not exist (add it first in the same batch to make the delete unconditional).</summary>
    public void DeleteTable(NfTable table)
    {
        var message = Start(NfTablesWire.DeleteTable, NetlinkMessageFlags.None, table.Family);
        message.AddString(NfTablesWire.TableName, CheckName(table.Name));
        Append(message, $"DELTABLE {Describe(table)}");
    }

    /// <summary>NEWCHAIN; a base chain with its hook, priority, type and policy.</summary>
    public void AddChain(NfTable table, NfChain chain)
    {
        var message = Start(NfTablesWire.NewChain, NetlinkMessageFlags.Create, table.Family);
        message.AddString(NfTablesWire.ChainTable, table.Name);
        message.AddString(NfTablesWire.ChainName, CheckName(chain.Name));
        if (chain.Base is { } baseChain)
        {
            int hook = message.BeginNested(NfTablesWire.ChainHook);
            message.AddBigEndian(NfTablesWire.HookNumber, (uint)baseChain.Hook);
            message.AddBigEndian(NfTablesWire.HookPriority, unchecked((uint)baseChain.Priority));
            message.EndNested(hook);
            message.AddBigEndian(NfTablesWire.ChainPolicy, (uint)baseChain.Policy);
            message.AddString(NfTablesWire.ChainType, baseChain.TypeName);
        }
        Append(message, $"NEWCHAIN {Describe(table)} {chain.Name}");
    }

    /// <summary>NEWSET and, in as many NEWSETELEM messages as needed, its elements.</summary>
    public void AddSet(NfTable table, NfSet set)
    {
        ArgumentNullException.ThrowIfNull(set);
        if (sets.ContainsKey((table, set.Name)))
            throw new ArgumentException($"set {set.Name} is already in this batch");
        uint id = (uint)sets.Count + 1;
        sets[(table, set.Name)] = (id, set);
        string wireName = WireName(set);

        var message = Start(NfTablesWire.NewSet, NetlinkMessageFlags.Create, table.Family);
        message.AddString(NfTablesWire.SetTable, table.Name);
        message.AddString(NfTablesWire.SetName, wireName);
        uint flags = (set.Interval ? NfTablesWire.SetInterval : 0) | (set.Anonymous ? NfTablesWire.SetAnonymous | NfTablesWire.SetConstant : 0);
        message.AddBigEndian(NfTablesWire.SetFlags, flags);
        message.AddBigEndian(NfTablesWire.SetKeyType, (uint)set.KeyType);
        message.AddBigEndian(NfTablesWire.SetKeyLength, (uint)set.KeyLength);
        message.AddBigEndian(NfTablesWire.SetId, id);
        if (set.Anonymous)
        {
            int description = message.BeginNested(NfTablesWire.SetDescription);
            message.AddBigEndian(NfTablesWire.SetDescriptionSize, (uint)set.Elements.Count);
            message.EndNested(description);
        }
        Append(message, $"NEWSET {Describe(table)} {set.Name}");

        for (int start = 0; start < set.Elements.Count; start += NetfilterLimits.MaxElementsPerMessage)
        {
            int end = Math.Min(set.Elements.Count, start + NetfilterLimits.MaxElementsPerMessage);
            var elements = Start(NfTablesWire.NewSetElement, NetlinkMessageFlags.Create, table.Family);
            elements.AddString(NfTablesWire.ElementListTable, table.Name);
            elements.AddString(NfTablesWire.ElementListSet, wireName);
            elements.AddBigEndian(NfTablesWire.ElementListSetId, id);
            int list = elements.BeginNested(NfTablesWire.ElementListElements);
            for (int i = start; i < end; i++)
            {
                NfSetElement element = set.Elements[i];
                if (element.Key.Length != set.KeyLength)
                    throw new ArgumentException($"set {set.Name}: a key of {element.Key.Length} bytes where {set.KeyLength} are required");
                int item = elements.BeginNested(NfTablesWire.ListElement);
                NfExpression.AddData(elements, NfTablesWire.ElementKey, element.Key);
                if (element.IntervalEnd)
                    elements.AddBigEndian(NfTablesWire.ElementFlags, NfTablesWire.ElementIntervalEnd);
                elements.EndNested(item);
            }
            elements.EndNested(list);
            Append(elements, $"NEWSETELEM {Describe(table)} {set.Name} [{start}..{end})");
        }
    }

    /// <summary>NEWRULE appended to its chain. Lookups of sets added in this batch carry the set's transaction id.</summary>
    public void AddRule(NfTable table, NfRule rule, int position = 0)
    {
        ArgumentNullException.ThrowIfNull(rule);
        var message = Start(NfTablesWire.NewRule, NetlinkMessageFlags.Create | Nfnetlink.Append, table.Family);
        message.AddString(NfTablesWire.RuleTable, table.Name);
        message.AddString(NfTablesWire.RuleChain, CheckName(rule.Chain));
        int list = message.BeginNested(NfTablesWire.RuleExpressions);
        foreach (NfExpression expression in rule.Expressions)
        {
            NfExpression encoded = expression;
            if (expression is NfLookup lookup && sets.TryGetValue((table, lookup.SetName), out var known))
                encoded = lookup with { SetName = WireName(known.Set), SetId = known.Id };
            encoded.Encode(message);
        }
        message.EndNested(list);
        if (rule.Comment is { } comment)
            message.AddAttribute(NfTablesWire.RuleUserData, EncodeComment(comment));
        Append(message, $"NEWRULE {Describe(table)} {rule.Chain} #{position}" + (rule.Comment is null ? "" : $" ({rule.Comment})"));
    }

    /// <summary>The datagram: begin, the messages numbered from <paramref name="firstSequence"/> + 1, end.</summary>
    internal byte[] Serialize(uint firstSequence)
    {
        var begin = Nfnetlink.Start(Nfnetlink.BatchBegin, NetlinkMessageFlags.None, 0, Nfnetlink.SubsystemNfTables);
        var end = Nfnetlink.Start(Nfnetlink.BatchEnd, NetlinkMessageFlags.None, 0, Nfnetlink.SubsystemNfTables);
        byte[] head = begin.Finish(firstSequence).ToArray();
        byte[] tail = end.Finish(firstSequence + (uint)messages.Count + 1).ToArray();
        byte[] datagram = new byte[head.Length + bytes + tail.Length];
        head.CopyTo(datagram, 0);
        int offset = head.Length;
        for (int i = 0; i < messages.Count; i++)
        {
            byte[] message = messages[i].Message;
            message.CopyTo(datagram, offset);
            BinaryPrimitives.WriteUInt32LittleEndian(datagram.AsSpan(offset + 8), firstSequence + (uint)i + 1);
            offset += message.Length;
        }
        tail.CopyTo(datagram, offset);
        return datagram;
    }

    static NetlinkMessageBuilder Start(byte type, NetlinkMessageFlags flags, NfTablesFamily family) =>
        Nfnetlink.Start(Nfnetlink.Type(Nfnetlink.SubsystemNfTables, type), flags | NetlinkMessageFlags.Ack, (byte)family);

    void Append(NetlinkMessageBuilder message, string operation)
    {
        byte[] finished = message.Finish(0).ToArray();
        if (bytes + finished.Length > NetfilterLimits.MaxBatchBytes)
            throw new InvalidOperationException($"nf_tables batch exceeds {NetfilterLimits.MaxBatchBytes} bytes");
        messages.Add((finished, operation));
        bytes += finished.Length;
    }

    static string WireName(NfSet set) => set.Anonymous ? "__set%d" : CheckName(set.Name);

    static string CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || Encoding.UTF8.GetByteCount(name) >= NetfilterLimits.MaxNameBytes)
            throw new ArgumentException($"nf_tables names are 1 to {NetfilterLimits.MaxNameBytes - 1} bytes");
        return name;
    }

    internal static byte[] EncodeComment(string comment)
    {
        int length = Encoding.UTF8.GetByteCount(comment) + 1;
        if (length > byte.MaxValue || length + 2 > NetfilterLimits.MaxUserDataBytes)
            throw new ArgumentException("a rule comment is at most 252 bytes");
        byte[] data = new byte[length + 2];
        data[0] = NfTablesWire.UserDataRuleComment;
        data[1] = (byte)length;
        Encoding.UTF8.GetBytes(comment, data.AsSpan(2));
        return data;
    }

    internal static string? DecodeComment(ReadOnlySpan<byte> userData)
    {
        while (userData.Length >= 2)
        {
            byte type = userData[0], length = userData[1];
            if (2 + length > userData.Length)
                KernelDataException.Throw(KernelDataError.NetlinkAttributeTruncated, "rule user data TLV runs past its attribute");
            if (type == NfTablesWire.UserDataRuleComment && length > 0)
                return Encoding.UTF8.GetString(userData.Slice(2, length - (userData[1 + length] == 0 ? 1 : 0)));
            userData = userData[(2 + length)..];
        }
        return null;
    }

    static string Describe(NfTable table) => $"{table.Family.ToString().ToLowerInvariant()} {table.Name}";
}

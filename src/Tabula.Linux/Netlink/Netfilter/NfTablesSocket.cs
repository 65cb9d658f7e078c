using Tabula.Linux.Netlink.Netfilter.Expressions;

namespace Tabula.Linux.Netlink.Netfilter;

/// <summary>
/// nf_tables over NETLINK_NETFILTER: commits batches and dumps tables, chains, rules, sets and set elements.
/// Opened in the calling thread's network namespace. Not thread-safe.
/// </summary>
/// <remarks>
/// Replies are checked against <see cref="NetfilterLimits"/>; malformed ones throw <see cref="KernelDataException"/>.
/// Messages name tables, chains and sets only, never addresses or keys.
/// </remarks>
public sealed class NfTablesSocket : IDisposable
{
    readonly NetlinkSocket socket;

    NfTablesSocket(NetlinkSocket socket) => this.socket = socket;

    /// <summary>Opens a NETLINK_NETFILTER socket with a receive timeout of <see cref="NetfilterLimits.ReplyTimeout"/>.</summary>
    public static NfTablesSocket Open()
    {
        var socket = NetlinkSocket.Open(NetlinkProtocol.Netfilter);
        try { socket.SetReceiveTimeout(NetfilterLimits.ReplyTimeout); }
        catch { socket.Dispose(); throw; }
        return new NfTablesSocket(socket);
    }

    /// <summary>
    /// Sends <paramref name="batch"/> as one transaction and waits for every message's acknowledgement. Throws
    /// <see cref="NfTablesException"/> naming each refused message; the kernel then applied nothing.
    /// </summary>
    public void Commit(NfTablesBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0)
            return;
        uint first = socket.NextSequence();
        for (int i = 0; i <= batch.Count; i++)
            socket.NextSequence();
        byte[] datagram = batch.Serialize(first);
        // Room for the whole batch in one datagram, and for one acknowledgement per message (an skb each).
        socket.SetBufferSizes(Math.Max(datagram.Length + 65536, 256 * 1024), Math.Max(batch.Count * 2048, 256 * 1024));
        socket.SendDatagram(datagram, $"nf_tables batch of {batch.Count} messages");

        var acknowledgements = new BatchAcknowledgements(first, batch.Operations);
        while (acknowledgements.Pending > 0)
            acknowledgements.Read(socket.ReceiveDatagram("nf_tables batch acknowledgements"));
        acknowledgements.ThrowIfRefused();
    }

    /// <summary>GETTABLE dump of <paramref name="family"/> (<see cref="NfTablesFamily.Unspecified"/> for all).</summary>
    public IReadOnlyList<NfTableInfo> GetTables(NfTablesFamily family = NfTablesFamily.Unspecified)
    {
        var tables = new List<NfTableInfo>();
        Dump(NfTablesWire.GetTable, family, null, "GETTABLE", payload => Add(tables, ParseTable(payload)));
        return tables;
    }

    /// <summary>GETCHAIN dump, the chains of <paramref name="table"/> only.</summary>
    public IReadOnlyList<NfChainInfo> GetChains(NfTable table)
    {
        var chains = new List<NfChainInfo>();
        Dump(NfTablesWire.GetChain, table.Family, null, "GETCHAIN", payload =>
        {
            if (ParseChain(payload, table.Name) is { } chain)
                Add(chains, chain);
        });
        return chains;
    }

    /// <summary>GETRULE dump of <paramref name="table"/>: every rule's expression names, comment and counter.</summary>
    public IReadOnlyList<NfRuleInfo> GetRules(NfTable table)
    {
        var rules = new List<NfRuleInfo>();
        Dump(NfTablesWire.GetRule, table.Family, m => m.AddString(NfTablesWire.RuleTable, table.Name), "GETRULE", payload =>
        {
            if (ParseRule(payload, table.Name) is { } rule)
                Add(rules, rule);
        });
        return rules;
    }

    /// <summary>GETSET dump of <paramref name="table"/>.</summary>
    public IReadOnlyList<NfSetInfo> GetSets(NfTable table)
    {
        var sets = new List<NfSetInfo>();
        Dump(NfTablesWire.GetSet, table.Family, m => m.AddString(NfTablesWire.SetTable, table.Name), "GETSET", payload =>
        {
            if (ParseSet(payload, table.Name) is { } set)
                Add(sets, set);
        });
        return sets;
    }

    /// <summary>GETSETELEM dump: the elements of one set, as keys with their interval-end flag.</summary>
    public IReadOnlyList<NfSetElement> GetSetElements(NfTable table, string set)
    {
        var elements = new List<NfSetElement>();
        Dump(NfTablesWire.GetSetElement, table.Family, m =>
        {
            m.AddString(NfTablesWire.ElementListTable, table.Name);
            m.AddString(NfTablesWire.ElementListSet, set);
        }, "GETSETELEM", payload => ParseElements(payload, elements));
        return elements;
    }

    /// <inheritdoc />
    public void Dispose() => socket.Dispose();

    // The dump readers below take one reply message's payload (nfgenmsg and attributes) and are what the
    // NfTablesNetlink fuzz target calls; a malformed payload throws KernelDataException.

    /// <summary>A NEWTABLE message of a GETTABLE dump.</summary>
    internal static NfTableInfo ParseTable(ReadOnlySpan<byte> payload)
    {
        var attributes = new AttributeReader(Nfnetlink.Attributes(payload, out byte family));
        string? name = null;
        ulong handle = 0;
        uint use = 0;
        while (attributes.TryRead(out ushort type, out ReadOnlySpan<byte> value))
        {
            switch (type)
            {
                case NfTablesWire.TableName: name = Nfnetlink.ReadName(value); break;
                case NfTablesWire.TableHandle: handle = Nfnetlink.ReadBigEndianUInt64(value); break;
                case NfTablesWire.TableUse: use = Nfnetlink.ReadBigEndianUInt32(value); break;
            }
        }
        return new NfTableInfo((NfTablesFamily)family, Require(name, "table name"), handle, use);
    }

    /// <summary>A NEWCHAIN message of a GETCHAIN dump; null when the chain belongs to a table other than <paramref name="table"/>.</summary>
    internal static NfChainInfo? ParseChain(ReadOnlySpan<byte> payload, string table)
    {
        var attributes = new AttributeReader(Nfnetlink.Attributes(payload, out byte family));
        string? tableName = null, name = null, typeName = null;
        ulong handle = 0;
        uint? hook = null, policy = null;
        int priority = 0;
        while (attributes.TryRead(out ushort type, out ReadOnlySpan<byte> value))
        {
            switch (type)
            {
                case NfTablesWire.ChainTable: tableName = Nfnetlink.ReadName(value); break;
                case NfTablesWire.ChainName: name = Nfnetlink.ReadName(value); break;
                case NfTablesWire.ChainHandle: handle = Nfnetlink.ReadBigEndianUInt64(value); break;
                case NfTablesWire.ChainPolicy: policy = Nfnetlink.ReadBigEndianUInt32(value); break;
                case NfTablesWire.ChainType: typeName = Nfnetlink.ReadName(value); break;
                case NfTablesWire.ChainHook:
                    var hookAttributes = new AttributeReader(value);
                    while (hookAttributes.TryRead(out ushort hookType, out ReadOnlySpan<byte> hookValue))
                    {
                        if (hookType == NfTablesWire.HookNumber) hook = Nfnetlink.ReadBigEndianUInt32(hookValue);
                        else if (hookType == NfTablesWire.HookPriority) priority = unchecked((int)Nfnetlink.ReadBigEndianUInt32(hookValue));
                    }
                    break;
            }
        }
        if (Require(tableName, "chain table") != table)
            return null;
        NfBaseChain? baseChain = hook is { } number
            ? new NfBaseChain(typeName switch { "nat" => NfChainType.Nat, "route" => NfChainType.Route, _ => NfChainType.Filter },
                (NfHook)number, priority, (NfVerdict)(int)(policy ?? 1))
            : null;
        return new NfChainInfo((NfTablesFamily)family, table, Require(name, "chain name"), handle, baseChain);
    }

    /// <summary>A NEWRULE message of a GETRULE dump; null when the rule belongs to a table other than <paramref name="table"/>.</summary>
    internal static NfRuleInfo? ParseRule(ReadOnlySpan<byte> payload, string table)
    {
        var attributes = new AttributeReader(Nfnetlink.Attributes(payload, out byte family));
        string? tableName = null, chain = null, comment = null;
        ulong handle = 0;
        var expressions = new List<string>();
        NfCounterValue? counter = null;
        while (attributes.TryRead(out ushort type, out ReadOnlySpan<byte> value))
        {
            switch (type)
            {
                case NfTablesWire.RuleTable: tableName = Nfnetlink.ReadName(value); break;
                case NfTablesWire.RuleChain: chain = Nfnetlink.ReadName(value); break;
                case NfTablesWire.RuleHandle: handle = Nfnetlink.ReadBigEndianUInt64(value); break;
                case NfTablesWire.RuleUserData: comment = NfTablesBatch.DecodeComment(value); break;
                case NfTablesWire.RuleExpressions: counter = ReadExpressions(value, expressions) ?? counter; break;
            }
        }
        return Require(tableName, "rule table") == table
            ? new NfRuleInfo((NfTablesFamily)family, table, Require(chain, "rule chain"), handle, expressions, comment, counter)
            : null;
    }

    /// <summary>A NEWSET message of a GETSET dump; null when the set belongs to a table other than <paramref name="table"/>.</summary>
    internal static NfSetInfo? ParseSet(ReadOnlySpan<byte> payload, string table)
    {
        var attributes = new AttributeReader(Nfnetlink.Attributes(payload, out byte family));
        string? tableName = null, name = null;
        ulong handle = 0;
        uint flags = 0, keyType = 0, keyLength = 0;
        while (attributes.TryRead(out ushort type, out ReadOnlySpan<byte> value))
        {
            switch (type)
            {
                case NfTablesWire.SetTable: tableName = Nfnetlink.ReadName(value); break;
                case NfTablesWire.SetName: name = Nfnetlink.ReadName(value); break;
                case NfTablesWire.SetHandle: handle = Nfnetlink.ReadBigEndianUInt64(value); break;
                case NfTablesWire.SetFlags: flags = Nfnetlink.ReadBigEndianUInt32(value); break;
                case NfTablesWire.SetKeyType: keyType = Nfnetlink.ReadBigEndianUInt32(value); break;
                case NfTablesWire.SetKeyLength: keyLength = Nfnetlink.ReadBigEndianUInt32(value); break;
            }
        }
        return Require(tableName, "set table") == table
            ? new NfSetInfo((NfTablesFamily)family, table, Require(name, "set name"), handle, flags, keyType, keyLength)
            : null;
    }

    /// <summary>A NEWSETELEM message of a GETSETELEM dump: its elements, added to <paramref name="elements"/>.</summary>
    internal static void ParseElements(ReadOnlySpan<byte> payload, List<NfSetElement> elements)
    {
        var attributes = new AttributeReader(Nfnetlink.Attributes(payload, out _));
        while (attributes.TryRead(out ushort type, out ReadOnlySpan<byte> value))
        {
            if (type != NfTablesWire.ElementListElements)
                continue;
            var list = new AttributeReader(value);
            while (list.TryRead(out _, out ReadOnlySpan<byte> element))
                Add(elements, ParseElement(element));
        }
    }

    internal static NfSetElement ParseElement(ReadOnlySpan<byte> element)
    {
        byte[]? key = null;
        uint flags = 0;
        var attributes = new AttributeReader(element);
        while (attributes.TryRead(out ushort type, out ReadOnlySpan<byte> value))
        {
            if (type == NfTablesWire.ElementFlags)
                flags = Nfnetlink.ReadBigEndianUInt32(value);
            else if (type == NfTablesWire.ElementKey)
            {
                var data = new AttributeReader(value);
                while (data.TryRead(out ushort dataType, out ReadOnlySpan<byte> bytes))
                {
                    if (dataType != NfTablesWire.DataValue)
                        continue;
                    if (bytes.Length is 0 or > NetfilterLimits.MaxDataValueBytes)
                        KernelDataException.Throw(KernelDataError.NetlinkAttributeSize, $"set key of {bytes.Length} bytes");
                    key = bytes.ToArray();
                }
            }
        }
        return new NfSetElement(Require(key, "set element key"), (flags & NfTablesWire.ElementIntervalEnd) != 0);
    }

    // NFTA_RULE_EXPRESSIONS: NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA }; returns the last counter's values.
    internal static NfCounterValue? ReadExpressions(ReadOnlySpan<byte> list, List<string> names)
    {
        NfCounterValue? counter = null;
        var elements = new AttributeReader(list);
        while (elements.TryRead(out _, out ReadOnlySpan<byte> element))
        {
            if (names.Count >= NetfilterLimits.MaxExpressionsPerRule)
                KernelDataException.Throw(KernelDataError.NetfilterTooManyObjects, $"over {NetfilterLimits.MaxExpressionsPerRule} expressions in a rule");
            string? name = null;
            ReadOnlySpan<byte> data = default;
            var attributes = new AttributeReader(element);
            while (attributes.TryRead(out ushort type, out ReadOnlySpan<byte> value))
            {
                if (type == NfTablesWire.ExpressionName) name = Nfnetlink.ReadName(value);
                else if (type == NfTablesWire.ExpressionData) data = value;
            }
            names.Add(Require(name, "expression name"));
            if (name == "counter")
            {
                ulong bytes = 0, packets = 0;
                var values = new AttributeReader(data);
                while (values.TryRead(out ushort type, out ReadOnlySpan<byte> value))
                {
                    if (type == 1) bytes = Nfnetlink.ReadBigEndianUInt64(value);        // NFTA_COUNTER_BYTES
                    else if (type == 2) packets = Nfnetlink.ReadBigEndianUInt64(value); // NFTA_COUNTER_PACKETS
                }
                counter = new NfCounterValue(packets, bytes);
            }
        }
        return counter;
    }

    void Dump(byte type, NfTablesFamily family, Action<NetlinkMessageBuilder>? filter, string name, Action<ReadOnlySpan<byte>> parse)
    {
        var request = Nfnetlink.Start(Nfnetlink.Type(Nfnetlink.SubsystemNfTables, type), NetlinkMessageFlags.Dump, (byte)family);
        filter?.Invoke(request);
        ushort expected = Nfnetlink.Type(Nfnetlink.SubsystemNfTables, (byte)(type - 1));   // GETx is answered with NEWx
        socket.Dump(request, $"{name}(dump)", message =>
        {
            if (message.Type == expected)
                parse(message.Payload);
        });
    }

    internal static void Add<T>(List<T> list, T item)
    {
        if (list.Count >= NetfilterLimits.MaxDumpObjects)
            KernelDataException.Throw(KernelDataError.NetfilterTooManyObjects, $"over {NetfilterLimits.MaxDumpObjects} objects in a dump");
        list.Add(item);
    }

    internal static T Require<T>(T? value, string what) where T : class
    {
        if (value is null)
            KernelDataException.Throw(KernelDataError.NetfilterAttributeMissing, what);
        return value;
    }
}

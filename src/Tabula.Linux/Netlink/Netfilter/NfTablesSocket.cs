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

        var operations = batch.Operations;
        var failures = new List<NfTablesFailure>();
        Errno commitError = Errno.None;
        int pending = batch.Count;
        bool[] answered = new bool[batch.Count];
        while (pending > 0)
        {
            var reader = new NetlinkMessageReader(socket.ReceiveDatagram("nf_tables batch acknowledgements"));
            while (reader.TryRead(out NetlinkMessage message))
            {
                if (message.Type != NetlinkHeader.Error)
                    KernelDataException.Throw(KernelDataError.NetlinkUnexpectedMessage, $"message type {message.Type} in reply to a batch");
                if (message.Payload.Length < 4)
                    KernelDataException.Throw(KernelDataError.NetlinkHeaderTruncated, $"nlmsgerr of {message.Payload.Length} bytes");
                int error = -BitConverter.ToInt32(message.Payload[..4]);
                long index = (long)message.Sequence - first - 1;
                if (index == -1 || index == batch.Count)
                {
                    commitError = (Errno)error;   // about the batch as a whole (the commit failed, or a framing error)
                    continue;
                }
                if (index < -1 || index > batch.Count || answered[index])
                    KernelDataException.Throw(KernelDataError.NetlinkSequenceMismatch, $"sequence {message.Sequence} in reply to a batch from {first}");
                answered[index] = true;
                pending--;
                if (error != 0)
                    failures.Add(new NfTablesFailure((int)index, operations[(int)index], (Errno)error));
            }
        }
        if (failures.Count > 0 || commitError != Errno.None)
            throw new NfTablesException(failures.OrderBy(f => f.Index).ToList(), commitError);
    }

    /// <summary>GETTABLE dump of <paramref name="family"/> (<see cref="NfTablesFamily.Unspecified"/> for all).</summary>
    public IReadOnlyList<NfTableInfo> GetTables(NfTablesFamily family = NfTablesFamily.Unspecified)
    {
        var tables = new List<NfTableInfo>();
        Dump(NfTablesWire.GetTable, family, null, "GETTABLE", payload =>
        {
            var attributes = new AttributeReader(Nfnetlink.Attributes(payload, out byte fam));
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
            Add(tables, new NfTableInfo((NfTablesFamily)fam, Require(name, "table name"), handle, use));
        });
        return tables;
    }

    /// <summary>GETCHAIN dump, the chains of <paramref name="table"/> only.</summary>
    public IReadOnlyList<NfChainInfo> GetChains(NfTable table)
    {
        var chains = new List<NfChainInfo>();
        Dump(NfTablesWire.GetChain, table.Family, null, "GETCHAIN", payload =>
        {
            var attributes = new AttributeReader(Nfnetlink.Attributes(payload, out byte fam));
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
            if (Require(tableName, "chain table") != table.Name)
                return;
            NfBaseChain? baseChain = hook is { } number
                ? new NfBaseChain(typeName switch { "nat" => NfChainType.Nat, "route" => NfChainType.Route, _ => NfChainType.Filter },
                    (NfHook)number, priority, (NfVerdict)(int)(policy ?? 1))
                : null;
            Add(chains, new NfChainInfo((NfTablesFamily)fam, table.Name, Require(name, "chain name"), handle, baseChain));
        });
        return chains;
    }

    /// <summary>GETRULE dump of <paramref name="table"/>: every rule's expression names, comment and counter.</summary>
    public IReadOnlyList<NfRuleInfo> GetRules(NfTable table)
    {
        var rules = new List<NfRuleInfo>();
        Dump(NfTablesWire.GetRule, table.Family, m => m.AddString(NfTablesWire.RuleTable, table.Name), "GETRULE", payload =>
        {
            var attributes = new AttributeReader(Nfnetlink.Attributes(payload, out byte fam));
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
            if (Require(tableName, "rule table") == table.Name)
                Add(rules, new NfRuleInfo((NfTablesFamily)fam, table.Name, Require(chain, "rule chain"), handle, expressions, comment, counter));
        });
        return rules;
    }

    /// <summary>GETSET dump of <paramref name="table"/>.</summary>
    public IReadOnlyList<NfSetInfo> GetSets(NfTable table)
    {
        var sets = new List<NfSetInfo>();
        Dump(NfTablesWire.GetSet, table.Family, m => m.AddString(NfTablesWire.SetTable, table.Name), "GETSET", payload =>
        {
            var attributes = new AttributeReader(Nfnetlink.Attributes(payload, out byte fam));
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
            if (Require(tableName, "set table") == table.Name)
                Add(sets, new NfSetInfo((NfTablesFamily)fam, table.Name, Require(name, "set name"), handle, flags, keyType, keyLength));
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
        }, "GETSETELEM", payload =>
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
        });
        return elements;
    }

    /// <inheritdoc />
    public void Dispose() => socket.Dispose();

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

    static void Add<T>(List<T> list, T item)
    {
        if (list.Count >= NetfilterLimits.MaxDumpObjects)
            KernelDataException.Throw(KernelDataError.NetfilterTooManyObjects, $"over {NetfilterLimits.MaxDumpObjects} objects in a dump");
        list.Add(item);
    }

    static T Require<T>(T? value, string what) where T : class
    {
        if (value is null)
            KernelDataException.Throw(KernelDataError.NetfilterAttributeMissing, what);
        return value;
    }
}

using Tabula.Linux;
using Tabula.Linux.Netlink;
using Tabula.Linux.Netlink.Netfilter;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// An nf_tables reply datagram, read as <see cref="NfTablesSocket"/> reads it. A datagram that starts with NLMSG_ERROR
/// is the kernel's answer to a batch (BATCH_BEGIN at sequence <see cref="BatchBegin"/>, <see cref="BatchMessages"/>
/// messages, as the corpus' captures were made); any other is a dump: NEWTABLE, NEWCHAIN, NEWRULE, NEWSET and
/// NEWSETELEM payloads through their readers, NLMSG_ERROR through the error reader. What is accepted stays within
/// <see cref="NetfilterLimits"/>; every answered batch message is answered once.
/// </summary>
public static class NfTablesNetlinkTarget
{
    /// <summary>The corpus' batches: BATCH_BEGIN at sequence 100, then four messages and BATCH_END.</summary>
    const uint BatchBegin = 100;
    const int BatchMessages = 4;
    const string Table = "tabula_test";
    const ushort NewTable = 10 << 8, NewChain = 10 << 8 | 3, NewRule = 10 << 8 | 6, NewSet = 10 << 8 | 9, NewSetElement = 10 << 8 | 12;

    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        try
        {
            if (input.Length >= NetlinkHeader.Size && BitConverter.ToUInt16(input[4..6]) == NetlinkHeader.Error)
                return Acknowledgements(input);
            var elements = new List<NfSetElement>();
            var reader = new NetlinkMessageReader(input);
            while (reader.TryRead(out NetlinkMessage message))
            {
                switch (message.Type)
                {
                    case NetlinkHeader.Error:
                        _ = NetlinkSocket.ReadError(message, out _);
                        break;
                    case NewTable:
                        FuzzFinding.Check(NfTablesSocket.ParseTable(message.Payload).Name.Length < NetfilterLimits.MaxNameBytes, "nf_tables: a table name over NFT_NAME_MAXLEN", input);
                        break;
                    case NewChain:
                        if (NfTablesSocket.ParseChain(message.Payload, Table) is { } chain)
                            FuzzFinding.Check(chain.Table == Table, "nf_tables: a chain of another table", input);
                        break;
                    case NewRule:
                        if (NfTablesSocket.ParseRule(message.Payload, Table) is { } rule)
                            FuzzFinding.Check(rule.Table == Table && rule.Expressions.Count <= NetfilterLimits.MaxExpressionsPerRule
                                && (rule.Comment is null || rule.Comment.Length < NetfilterLimits.MaxUserDataBytes),
                                "nf_tables: a rule over its limits", input);
                        break;
                    case NewSet:
                        if (NfTablesSocket.ParseSet(message.Payload, Table) is { } set)
                            FuzzFinding.Check(set.Table == Table, "nf_tables: a set of another table", input);
                        break;
                    case NewSetElement:
                        NfTablesSocket.ParseElements(message.Payload, elements);
                        break;
                }
            }
            FuzzFinding.Check(elements.All(e => e.Key.Length is > 0 and <= NetfilterLimits.MaxDataValueBytes), "nf_tables: a set key out of range", input);
            return true;
        }
        catch (KernelDataException) { return false; }
    }

    static bool Acknowledgements(ReadOnlySpan<byte> input)
    {
        string[] operations = [.. Enumerable.Range(0, BatchMessages).Select(i => $"message {i}")];
        var acknowledgements = new BatchAcknowledgements(BatchBegin, operations);
        acknowledgements.Read(input);
        FuzzFinding.Check(acknowledgements.Pending is >= 0 and <= BatchMessages, "nf_tables batch: pending out of range", input);
        var failures = acknowledgements.Failures;
        FuzzFinding.Check(failures.All(f => f.Index is >= 0 and < BatchMessages && f.Operation == operations[f.Index])
            && failures.Select(f => f.Index).Distinct().Count() == failures.Count, "nf_tables batch: a failure of no message, or twice", input);
        FuzzFinding.Check(BatchMessages - acknowledgements.Pending >= failures.Count, "nf_tables batch: more failures than answers", input);
        if (acknowledgements.Pending == 0)
        {
            bool refused = failures.Count > 0 || acknowledgements.CommitError != Errno.None;
            try { acknowledgements.ThrowIfRefused(); FuzzFinding.Check(!refused, "nf_tables batch: a refusal not thrown", input); }
            catch (NfTablesException e) { FuzzFinding.Check(refused && e.Failures.Count == failures.Count, "nf_tables batch: thrown without a refusal", input); }
        }
        return true;
    }
}

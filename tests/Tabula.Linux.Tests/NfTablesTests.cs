using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Tabula.Linux.Netlink;
using Tabula.Linux.Netlink.Route;
using Tabula.Linux.Netlink.Netfilter;
using Tabula.Linux.Netlink.Netfilter.Expressions;
using Tabula.Testing;

namespace Tabula.Linux.Tests;

/// <summary>nf_tables encoding, and the real kernel in a throwaway namespace read back by nft as an independent reader.</summary>
public sealed class NfTablesTests
{
    static readonly NfTable Table = new(NfTablesFamily.Inet, "tabula_test");

    static string Nft(NetworkNamespace ns, params string[] arguments) =>
        Prerequisites.Run("ip", ["netns", "exec", ns.Name, "nft", .. arguments]);

    static NfRuleset SampleRuleset(params NfRule[] extra) => new(Table,
        [
            new NfSet("private4", NfSetKeyType.IPv4Address,
                NfIntervals.FromPrefixes(AddressFamily.InterNetwork, [IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("192.168.0.0/16")]), Interval: true),
            new NfSet("private6", NfSetKeyType.IPv6Address,
                NfIntervals.FromPrefixes(AddressFamily.InterNetworkV6, [IPNetwork.Parse("fc00::/7")]), Interval: true),
        ],
        [
            new NfChain("forward", new NfBaseChain(NfChainType.Filter, NfHook.Forward, 0, NfVerdict.Drop)),
            new NfChain("postrouting", new NfBaseChain(NfChainType.Nat, NfHook.Postrouting, 100)),
        ],
        [
            new NfRule("forward", [.. NfMatch.ClampMssToPathMtu()], "mss"),
            new NfRule("forward", [.. NfMatch.AddressInSet(AddressFamily.InterNetwork, false, "private4"), new NfCounter(), new NfVerdictExpression(NfVerdict.Drop)], "isolation"),
            new NfRule("forward", [.. NfMatch.AddressInSet(AddressFamily.InterNetworkV6, false, "private6"), new NfCounter(), new NfVerdictExpression(NfVerdict.Drop)], "isolation"),
            new NfRule("forward", [.. NfMatch.ConntrackState(NfCtState.Established | NfCtState.Related), new NfCounter(), new NfVerdictExpression(NfVerdict.Accept)], "forwarded"),
            new NfRule("postrouting", [.. NfMatch.InterfaceName(NfMetaKey.OutputInterfaceName, "up0"), .. NfMatch.Family(AddressFamily.InterNetwork),
                new NfImmediateData(IPAddress.Parse("203.0.113.7").GetAddressBytes()), new NfNat(NfNatType.Source, NfTablesFamily.IPv4)], "snat4"),
            new NfRule("postrouting", [.. NfMatch.Family(AddressFamily.InterNetworkV6),
                new NfImmediateData(IPAddress.Parse("2001:db8::7").GetAddressBytes()), new NfNat(NfNatType.Source, NfTablesFamily.IPv6)], "snat6"),
            .. extra,
        ]);

    [Fact]
    public void Intervals_merge_overlapping_and_adjacent_prefixes_and_close_each_range()
    {
        var elements = NfIntervals.FromPrefixes(AddressFamily.InterNetwork,
            [IPNetwork.Parse("10.0.0.0/9"), IPNetwork.Parse("10.128.0.0/9"), IPNetwork.Parse("10.1.0.0/16"), IPNetwork.Parse("192.168.1.0/24")]);
        Assert.Equal(
            [("10.0.0.0", false), ("11.0.0.0", true), ("192.168.1.0", false), ("192.168.2.0", true)],
            elements.Select(e => (new IPAddress(e.Key).ToString(), e.IntervalEnd)));
        var top = NfIntervals.FromPrefixes(AddressFamily.InterNetworkV6, [IPNetwork.Parse("ff00::/8")]);
        Assert.Single(top);   // nothing after the top of the address space
    }

    [Fact]
    public void Batch_is_framed_by_begin_and_end_with_consecutive_sequence_numbers()
    {
        var batch = new NfTablesBatch();
        batch.Add(SampleRuleset());
        byte[] datagram = batch.Serialize(100);
        var reader = new NetlinkMessageReader(datagram);
        var seen = new List<(ushort Type, uint Sequence, NetlinkMessageFlags Flags)>();
        while (reader.TryRead(out NetlinkMessage message))
            seen.Add((message.Type, message.Sequence, message.Flags));
        Assert.Equal(batch.Count + 2, seen.Count);
        Assert.Equal((ushort)16, seen[0].Type);                        // NFNL_MSG_BATCH_BEGIN
        Assert.Equal((ushort)17, seen[^1].Type);                       // NFNL_MSG_BATCH_END
        Assert.Equal(Enumerable.Range(100, seen.Count).Select(i => (uint)i), seen.Select(s => s.Sequence));
        Assert.Equal((ushort)(10 << 8 | 0), seen[1].Type);             // NFT_MSG_NEWTABLE of NFNL_SUBSYS_NFTABLES
        Assert.All(seen.Skip(1).SkipLast(1), s => Assert.True(s.Flags.HasFlag(NetlinkMessageFlags.Ack)));
        // res_id of BATCH_BEGIN is NFNL_SUBSYS_NFTABLES in network order.
        Assert.Equal(10, BinaryPrimitives.ReadUInt16BigEndian(datagram.AsSpan(NetlinkHeader.Size + 2)));
    }

    [Fact]
    public void Rule_comment_round_trips_through_nft_user_data()
    {
        byte[] data = NfTablesBatch.EncodeComment("isolation");
        Assert.Equal(0, data[0]);
        Assert.Equal("isolation", NfTablesBatch.DecodeComment(data));
        Assert.Throws<KernelDataException>(() => NfTablesBatch.DecodeComment([0, 200, 1]));
    }

    [Fact]
    public void Malformed_rule_replies_are_refused_with_typed_errors()
    {
        var names = new List<string>();
        var truncated = Assert.Throws<KernelDataException>(() => NfTablesSocket.ReadExpressions([0x20, 0, 1, 0], names));
        Assert.Equal(KernelDataError.NetlinkAttributeTruncated, truncated.Reason);
        var nameless = new NetlinkMessageBuilder(1, NetlinkMessageFlags.None);
        int element = nameless.BeginNested(1);
        nameless.EndNested(element);
        var missing = Assert.Throws<KernelDataException>(() => NfTablesSocket.ReadExpressions(nameless.Finish(1)[NetlinkHeader.Size..].ToArray(), names));
        Assert.Equal(KernelDataError.NetfilterAttributeMissing, missing.Reason);
        var many = new NetlinkMessageBuilder(1, NetlinkMessageFlags.None);
        for (int i = 0; i <= NetfilterLimits.MaxExpressionsPerRule; i++)
        {
            int e = many.BeginNested(1);
            many.AddString(1, "counter");
            many.EndNested(e);
        }
        names.Clear();
        var tooMany = Assert.Throws<KernelDataException>(() => NfTablesSocket.ReadExpressions(many.Finish(1)[NetlinkHeader.Size..].ToArray(), names));
        Assert.Equal(KernelDataError.NetfilterTooManyObjects, tooMany.Reason);
    }

    [PrivilegedFact("ip", "nft")]
    public void Ruleset_committed_in_one_batch_reads_back_through_netlink_and_through_nft()
    {
        Prerequisites.Require(needsRoot: true, "ip", "nft");
        using var ns = NetworkNamespace.Create("nft");
        var (tables, chains, rules, sets, elements) = ns.RunInside(() =>
        {
            using var nft = NfTablesSocket.Open();
            var batch = new NfTablesBatch();
            batch.Add(SampleRuleset());
            nft.Commit(batch);
            return (nft.GetTables(), nft.GetChains(Table), nft.GetRules(Table), nft.GetSets(Table), nft.GetSetElements(Table, "private4"));
        });
        Assert.Contains(tables, t => t.Name == "tabula_test" && t.Family == NfTablesFamily.Inet);
        var forward = chains.Single(c => c.Name == "forward");
        Assert.Equal(new NfBaseChain(NfChainType.Filter, NfHook.Forward, 0, NfVerdict.Drop), forward.Base);
        Assert.Equal(NfChainType.Nat, chains.Single(c => c.Name == "postrouting").Base!.Type);
        Assert.Equal(["mss", "isolation", "isolation", "forwarded", "snat4", "snat6"], rules.Select(r => r.Comment));
        Assert.Equal(["meta", "cmp", "payload", "bitwise", "cmp", "rt", "byteorder", "exthdr"], rules[0].Expressions);
        Assert.Equal(new NfCounterValue(0, 0), rules[1].Counter);
        Assert.True(sets.Single(s => s.Name == "private4").Interval);
        Assert.Equal(4, elements.Count);

        using var json = JsonDocument.Parse(Nft(ns, "-j", "list", "ruleset"));
        var items = json.RootElement.GetProperty("nftables").EnumerateArray().ToList();
        Assert.Contains(items, i => i.TryGetProperty("chain", out var c) && c.GetProperty("name").GetString() == "forward"
            && c.GetProperty("hook").GetString() == "forward" && c.GetProperty("policy").GetString() == "drop");
        var set = items.Single(i => i.TryGetProperty("set", out var s) && s.GetProperty("name").GetString() == "private4").GetProperty("set");
        Assert.Equal("ipv4_addr", set.GetProperty("type").GetString());
        string text = Nft(ns, "list", "ruleset");
        Assert.Contains("10.0.0.0/8", text);
        Assert.Contains("192.168.0.0/16", text);
        Assert.Contains("fc00::/7", text);
        Assert.Contains("tcp option maxseg size set rt mtu", text);
        Assert.Contains("snat ip to 203.0.113.7", text);
        Assert.Contains("snat ip6 to 2001:db8::7", text);
        Assert.Contains("comment \"isolation\"", text);
    }

    [PrivilegedFact("ip", "nft")]
    public void Refused_batch_names_the_failing_message_and_applies_nothing()
    {
        Prerequisites.Require(needsRoot: true, "ip", "nft");
        using var ns = NetworkNamespace.Create("nftbad");
        var bad = new NfRule("forward", [.. NfMatch.AddressInSet(AddressFamily.InterNetwork, false, "no_such_set"), new NfVerdictExpression(NfVerdict.Drop)], "bad");
        var failure = ns.RunInside(() =>
        {
            using var nft = NfTablesSocket.Open();
            var batch = new NfTablesBatch();
            batch.Add(SampleRuleset(bad));
            return Assert.Throws<NfTablesException>(() => nft.Commit(batch));
        });
        Assert.Equal(Errno.ENOENT, failure.Errno);
        var only = Assert.Single(failure.Failures);
        Assert.Equal("NEWRULE inet tabula_test forward #5 (bad)", only.Operation);
        Assert.DoesNotContain("tabula_test", Nft(ns, "list", "ruleset"));
    }
}

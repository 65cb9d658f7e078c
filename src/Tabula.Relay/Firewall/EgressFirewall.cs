using Tabula.Linux;
using Tabula.Linux.Netlink.Netfilter;

namespace Tabula.Relay.Firewall;

/// <summary>Totals the operator may see: no address, no key, nothing per customer.</summary>
/// <param name="ForwardedPackets">Packets accepted by the forward chain, both directions.</param>
/// <param name="ForwardedBytes">Bytes of those packets.</param>
/// <param name="IsolationDroppedPackets">Packets dropped for going customer to customer, to a blocked range, or to the relay itself.</param>
/// <param name="IsolationDroppedBytes">Bytes of those packets.</param>
/// <param name="NatEntries">Conntrack entries with a source NAT binding (the NAT table's size).</param>
public sealed record EgressCounters(ulong ForwardedPackets, ulong ForwardedBytes, ulong IsolationDroppedPackets,
    ulong IsolationDroppedBytes, int NatEntries);

/// <summary>What <see cref="EgressFirewall.Apply(NfRuleset)"/> did.</summary>
public enum EgressApplyOutcome
{
    /// <summary>There was no table; it was created.</summary>
    Created,
    /// <summary>The table differed; it was deleted and added again in one batch.</summary>
    Replaced,
    /// <summary>The table already matched; nothing was sent (counters keep counting).</summary>
    Unchanged,
}

/// <summary>
/// Applies the egress ruleset to the kernel of the calling thread's network namespace: one atomic batch, read back
/// and compared, replaced atomically on change (delete and add in the same batch, so no packet ever sees the
/// machine without the table), removed on shutdown. A refused batch leaves the previous ruleset as it was.
/// </summary>
public sealed class EgressFirewall
{
    /// <summary>Builds the policy's ruleset and applies it.</summary>
    public EgressApplyOutcome Apply(EgressPolicy policy) => Apply(EgressRuleset.Build(policy));

    /// <summary>Applies <paramref name="desired"/> (its table replaces any table of the same name).</summary>
    public EgressApplyOutcome Apply(NfRuleset desired)
    {
        ArgumentNullException.ThrowIfNull(desired);
        using var nft = NfTablesSocket.Open();
        bool exists = nft.GetTables(desired.Table.Family).Any(t => t.Name == desired.Table.Name);
        if (exists && Differences(nft, desired).Count == 0)
            return EgressApplyOutcome.Unchanged;

        var batch = new NfTablesBatch();
        // "add; delete; add" makes the delete unconditional, so one batch serves both creation and replacement.
        batch.AddTable(desired.Table);
        batch.DeleteTable(desired.Table);
        batch.Add(desired);
        try { nft.Commit(batch); }
        catch (NfTablesException e)
        {
            throw new EgressFirewallException(EgressFirewallError.KernelRefused, e.Message, e);
        }

        var differences = Differences(nft, desired);
        if (differences.Count > 0)
            throw new EgressFirewallException(EgressFirewallError.ReadBackMismatch, string.Join("; ", differences.Take(5)));
        return exists ? EgressApplyOutcome.Replaced : EgressApplyOutcome.Created;
    }

    /// <summary>Deletes the table (on shutdown); a missing table is not an error.</summary>
    public void Remove(NfTable table)
    {
        using var nft = NfTablesSocket.Open();
        var batch = new NfTablesBatch();
        batch.AddTable(table);
        batch.DeleteTable(table);
        nft.Commit(batch);
    }

    /// <summary>The totals of the table's counters plus the NAT table's size.</summary>
    public EgressCounters ReadCounters(NfTable table)
    {
        IReadOnlyList<NfRuleInfo> rules;
        using (var nft = NfTablesSocket.Open())
            rules = nft.GetRules(table);
        int nat;
        using (var conntrack = ConntrackSocket.Open())
            nat = conntrack.CountSourceNat();
        NfCounterValue Sum(string comment) => rules.Where(r => r.Comment == comment && r.Counter is not null)
            .Aggregate(new NfCounterValue(0, 0), (a, r) => new NfCounterValue(a.Packets + r.Counter!.Value.Packets, a.Bytes + r.Counter.Value.Bytes));
        var forwarded = Sum(EgressRuleset.ForwardedComment);
        var dropped = Sum(EgressRuleset.IsolationComment);
        return new EgressCounters(forwarded.Packets, forwarded.Bytes, dropped.Packets, dropped.Bytes, nat);
    }

    /// <summary>
    /// Turns on forwarding for both families, strict reverse-path filtering on the uplink, and redirects off
    /// (send_redirects is ORed over "all" and the device, so both are cleared).
    /// </summary>
    public static void ApplySysctls(EgressPolicy policy, Sysctl sysctl)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(sysctl);
        sysctl.Write(SysctlKey.Ipv4Forward, 1);
        sysctl.Write(SysctlKey.Ipv6Forwarding("all"), 1);
        sysctl.Write(SysctlKey.ReversePathFilter(policy.UplinkInterface), 1);
        foreach (string device in new[] { "all", "default", policy.UplinkInterface, policy.WireGuardInterface })
            sysctl.Write(SysctlKey.SendRedirects(device), 0);
    }

    /// <summary>What differs between the kernel's table and <paramref name="desired"/>: chains, rules (comments and expression types in order), sets and named sets' elements.</summary>
    public static IReadOnlyList<string> Differences(NfTablesSocket nft, NfRuleset desired)
    {
        ArgumentNullException.ThrowIfNull(nft);
        ArgumentNullException.ThrowIfNull(desired);
        var differences = new List<string>();
        var chains = nft.GetChains(desired.Table);
        foreach (NfChain chain in desired.Chains)
        {
            var actual = chains.FirstOrDefault(c => c.Name == chain.Name);
            if (actual is null) differences.Add($"chain {chain.Name} missing");
            else if (actual.Base != chain.Base) differences.Add($"chain {chain.Name} has another hook, priority or policy");
        }
        if (chains.Count != desired.Chains.Count)
            differences.Add($"{chains.Count} chains where {desired.Chains.Count} were sent");

        var rules = nft.GetRules(desired.Table);
        foreach (var group in desired.Rules.GroupBy(r => r.Chain))
        {
            var actual = rules.Where(r => r.Chain == group.Key).ToList();
            var wanted = group.ToList();
            if (actual.Count != wanted.Count)
            {
                differences.Add($"chain {group.Key} has {actual.Count} rules where {wanted.Count} were sent");
                continue;
            }
            for (int i = 0; i < wanted.Count; i++)
                if (actual[i].Comment != wanted[i].Comment || !actual[i].Expressions.SequenceEqual(wanted[i].Expressions.Select(e => e.Name)))
                    differences.Add($"chain {group.Key} rule {i + 1} differs");
        }

        var sets = nft.GetSets(desired.Table);
        foreach (NfSet set in desired.Sets.Where(s => !s.Anonymous))
        {
            var actual = sets.FirstOrDefault(s => s.Name == set.Name);
            if (actual is null)
            {
                differences.Add($"set {set.Name} missing");
                continue;
            }
            var elements = nft.GetSetElements(desired.Table, set.Name);
            var want = set.Elements.Select(Key).ToHashSet();
            var have = elements.Select(Key).ToHashSet();
            if (!want.SetEquals(have))
                differences.Add($"set {set.Name} has {elements.Count} elements where {set.Elements.Count} were sent, or other ones");
        }
        return differences;
    }

    static string Key(NfSetElement element) => Convert.ToHexString(element.Key) + (element.IntervalEnd ? "/end" : "");
}

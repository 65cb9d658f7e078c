using System.Collections.Concurrent;

namespace Tabula.Fleet.Core;

/// <summary>
/// The latest health report of each relay, in this instance's memory only: health is a live signal, not a
/// record, so a restart forgets it and relays report again within their interval. It holds counts only.
/// </summary>
public sealed class RelayHealthBoard(TimeProvider time)
{
    public sealed record Entry(long Peers, long HandshakesLastMinute, long RxBytes, long TxBytes, long AppliedRevision, DateTimeOffset ReportedAt)
    {
        /// <summary>The egress totals of the report (zero from an agent that predates them).</summary>
        public EgressTotals Egress { get; init; } = new(0, 0, 0, 0, 0);
    }

    /// <summary>Forwarded packets and bytes, packets dropped by isolation, NAT entries, DNS queries answered: totals only.</summary>
    public sealed record EgressTotals(long ForwardedPackets, long ForwardedBytes, long IsolationDroppedPackets, long NatEntries, long DnsQueriesAnswered);

    private readonly ConcurrentDictionary<string, Entry> latest = new(StringComparer.Ordinal);

    public void Report(string machineId, long peers, long handshakesLastMinute, long rxBytes, long txBytes, long appliedRevision,
        EgressTotals? egress = null)
    {
        if (peers < 0 || handshakesLastMinute < 0 || rxBytes < 0 || txBytes < 0 || appliedRevision < 0)
            throw new FleetException(FleetError.InvalidInput, "health counts are not negative");
        latest[machineId] = new Entry(peers, handshakesLastMinute, rxBytes, txBytes, appliedRevision, time.GetUtcNow())
        {
            Egress = egress ?? new EgressTotals(0, 0, 0, 0, 0),
        };
    }

    public void Report(string machineId, Protocol.HealthReport r)
    {
        if (r.ForwardedPackets < 0 || r.ForwardedBytes < 0 || r.IsolationDroppedPackets < 0 || r.NatEntries < 0 || r.DnsQueriesAnswered < 0)
            throw new FleetException(FleetError.InvalidInput, "health counts are not negative");
        Report(machineId, r.Peers, r.HandshakesLastMinute, r.RxBytes, r.TxBytes, r.AppliedRevision,
            new EgressTotals(r.ForwardedPackets, r.ForwardedBytes, r.IsolationDroppedPackets, r.NatEntries, r.DnsQueriesAnswered));
    }

    public Entry? Get(string machineId) => latest.TryGetValue(machineId, out var entry) ? entry : null;

    public IReadOnlyList<KeyValuePair<string, Entry>> All() => [.. latest.OrderBy(kv => kv.Key, StringComparer.Ordinal)];

    public void Forget(string machineId) => latest.TryRemove(machineId, out _);
}

using System.Collections.Concurrent;

namespace Tabula.Fleet.Core;

/// <summary>
/// The latest health report of each relay, in memory only: health is a live signal, not a record, so a restart
/// forgets it and relays report again within their interval. It holds counts only. With several instances
/// (PostgreSQL, issue 18) a relay reports to the one it talks to, which publishes the report
/// (<see cref="Notification"/>, through NOTIFY) so every instance's board shows every relay; without that, staff on
/// another instance saw nothing of the relay, or a stale report once it had failed over.
/// </summary>
public sealed class RelayHealthBoard(TimeProvider time)
{
    /// <summary>How a health notification starts: <c>health INSTANCE MACHINE JSON</c>.</summary>
    public const string NotificationPrefix = "health ";

    /// <summary>This instance's tag in its notifications, so it skips its own (it has the report already).</summary>
    private readonly string instance = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));

    public sealed record Entry(long Peers, long HandshakesLastMinute, long RxBytes, long TxBytes, long AppliedRevision, DateTimeOffset ReportedAt)
    {
        /// <summary>The egress totals of the report (zero from an agent that predates them).</summary>
        public EgressTotals Egress { get; init; } = new(0, 0, 0, 0, 0);
        /// <summary>How much of the peer set the relay's device serves (not partial from an agent that predates it).</summary>
        public PeerSetShare PeerSet { get; init; } = new(0, 0, 0, 0, null);
        /// <summary>Peers with a handshake in the last 3 minutes, seconds since the agent started, its version (null from an older agent).</summary>
        public AgentFacts Agent { get; init; } = new(null, null, null);
    }

    /// <summary>The issue 18 fields of a report: connected peers (handshake in 3 minutes), uptime, agent version; each optional.</summary>
    public sealed record AgentFacts(long? HandshakesLast3Minutes, long? UptimeSeconds, string? Version);

    /// <summary>Peers in the set, on the device, waiting for room, refused for addresses outside the pools; why partial (null: whole).</summary>
    public sealed record PeerSetShare(long Wanted, long Applied, long Pending, long OutsidePool, string? PartialReason)
    {
        public bool Partial => PartialReason is not null;
    }

    /// <summary>Forwarded packets and bytes, packets dropped by isolation, NAT entries, DNS queries answered: totals only.</summary>
    public sealed record EgressTotals(long ForwardedPackets, long ForwardedBytes, long IsolationDroppedPackets, long NatEntries, long DnsQueriesAnswered);

    private readonly ConcurrentDictionary<string, Entry> latest = new(StringComparer.Ordinal);
    private long version;

    /// <summary>Changes with every report and every forgotten relay (the dashboard's "health" events).</summary>
    public long Version => Interlocked.Read(ref version);

    public void Report(string machineId, long peers, long handshakesLastMinute, long rxBytes, long txBytes, long appliedRevision,
        EgressTotals? egress = null)
    {
        if (peers < 0 || handshakesLastMinute < 0 || rxBytes < 0 || txBytes < 0 || appliedRevision < 0)
            throw new FleetException(FleetError.InvalidInput, "health counts are not negative");
        latest[machineId] = new Entry(peers, handshakesLastMinute, rxBytes, txBytes, appliedRevision, time.GetUtcNow())
        {
            Egress = egress ?? new EgressTotals(0, 0, 0, 0, 0),
        };
        Interlocked.Increment(ref version);
    }

    public void Report(string machineId, Protocol.HealthReport r)
    {
        if (r.ForwardedPackets < 0 || r.ForwardedBytes < 0 || r.IsolationDroppedPackets < 0 || r.NatEntries < 0 || r.DnsQueriesAnswered < 0
            || r.PeersWanted < 0 || r.PeersApplied < 0 || r.PeersPending < 0 || r.PeersOutsidePool < 0)
            throw new FleetException(FleetError.InvalidInput, "health counts are not negative");
        // The reason is the relay's text: bounded, and only the characters its words use (it reaches dashboards and metrics).
        if (r.PartialReason is { } why && (why.Length > Protocol.HealthReport.MaxPartialReasonLength
            || why.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '_' or ',' or ':'))))
            throw new FleetException(FleetError.InvalidInput, $"partial_reason is at most {Protocol.HealthReport.MaxPartialReasonLength} characters of [A-Za-z0-9_,:]");
        if (r.HandshakesLast3Minutes < 0 || r.UptimeSeconds < 0)
            throw new FleetException(FleetError.InvalidInput, "health counts are not negative");
        if (r.AgentVersion is { } version && (version.Length is 0 or > Protocol.HealthReport.MaxAgentVersionLength
            || version.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '.' or '+' or '-'))))
            throw new FleetException(FleetError.InvalidInput, $"agent_version is 1 to {Protocol.HealthReport.MaxAgentVersionLength} characters of [A-Za-z0-9.+-]");
        Report(machineId, r.Peers, r.HandshakesLastMinute, r.RxBytes, r.TxBytes, r.AppliedRevision,
            new EgressTotals(r.ForwardedPackets, r.ForwardedBytes, r.IsolationDroppedPackets, r.NatEntries, r.DnsQueriesAnswered));
        if (latest.TryGetValue(machineId, out var entry))
            latest[machineId] = entry with
            {
                PeerSet = new PeerSetShare(r.PeersWanted, r.PeersApplied, r.PeersPending, r.PeersOutsidePool,
                    r.PartialApply ? (string.IsNullOrEmpty(r.PartialReason) ? "unspecified" : r.PartialReason) : null),
                Agent = new AgentFacts(r.HandshakesLast3Minutes, r.UptimeSeconds, r.AgentVersion),
            };
    }

    /// <summary>The notification that carries <paramref name="report"/> to the other instances' boards.</summary>
    public string Notification(string machineId, Protocol.HealthReport report) =>
        $"{NotificationPrefix}{instance} {machineId} {System.Text.Json.JsonSerializer.Serialize(report, Protocol.RelayWireJson.Default.HealthReport)}";

    /// <summary>
    /// Takes the report of another instance's <see cref="Notification"/> (its own are skipped), checked as a report from
    /// a relay is; false when it was not one, or this instance's own.
    /// </summary>
    public bool ReportNotification(string payload)
    {
        string[] parts = payload.Split(' ', 4);
        if (parts.Length != 4 || parts[0] + " " != NotificationPrefix || parts[1] == instance || parts[2].Length != 32
            || !parts[2].All(char.IsAsciiHexDigitLower))
            return false;
        try
        {
            if (System.Text.Json.JsonSerializer.Deserialize(parts[3], Protocol.RelayWireJson.Default.HealthReport) is not { } report) return false;
            Report(parts[2], report);
            return true;
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or FleetException) { return false; }
    }

    public Entry? Get(string machineId) => latest.TryGetValue(machineId, out var entry) ? entry : null;

    public IReadOnlyList<KeyValuePair<string, Entry>> All() => [.. latest.OrderBy(kv => kv.Key, StringComparer.Ordinal)];

    public void Forget(string machineId)
    {
        if (latest.TryRemove(machineId, out _)) Interlocked.Increment(ref version);
    }
}

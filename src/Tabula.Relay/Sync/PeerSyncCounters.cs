namespace Tabula.Relay.Sync;

/// <summary>Totals of the peer stream since the agent started: counts only, never which device.</summary>
/// <param name="Added">Add deltas applied.</param>
/// <param name="Removed">Remove deltas applied.</param>
/// <param name="ConnectionsFlushed">Conntrack entries deleted for removed devices.</param>
/// <param name="FlushFailures">Removals whose connections could not be flushed (they then expire on their own).</param>
public readonly record struct PeerSyncCounters(long Added, long Removed, long ConnectionsFlushed, long FlushFailures);

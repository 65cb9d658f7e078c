using Tabula.Fleet.Storage;
using Microsoft.Extensions.Logging;

namespace Tabula.Fleet.Core;

/// <summary>Where the peer stream goes: Api/PeerStreamWriter.cs writes newline-delimited JSON.</summary>
public interface IPeerStreamWriter
{
    void SnapshotBegin(long revision, long count);
    void Peer(byte[] publicKey, string ipv4, string ipv6);
    void SnapshotEnd(long revision, byte[] setHash);
    void Change(PeerChange change);
    void Heartbeat(long revision);
    /// <summary>Bytes written but not flushed yet.</summary>
    long Unflushed { get; }
    /// <summary>Completes when the relay has taken the bytes (backpressure).</summary>
    ValueTask FlushAsync(CancellationToken ct);
}

/// <summary>
/// One relay's subscription: snapshot if needed, then ordered deltas forever. Revisions are dense
/// (every integer is one change), so the relay can check it missed nothing: each delta's revision is its
/// previous one plus one, and after each its running set hash equals the delta's hash.
/// </summary>
public sealed class PeerStream(IStore store, PeerHub hub, FleetMetrics metrics, ILogger<PeerStream> logger)
{
    private const int FlushBytes = 64 * 1024;

    public async Task RunAsync(Machine relay, long from, IPeerStreamWriter w, CancellationToken ct)
    {
        await hub.Started.WaitAsync(ct);
        Log.RelaySubscribed(logger, relay.Id, from);
        metrics.Subscribers.Add(1);
        try
        {
            long cursor = from;
            var (dbHead, oldest) = await ReadAsync(async tx => (await tx.HeadRevisionAsync(), await tx.OldestChangeAsync()), ct);
            if (from <= 0 || from > dbHead || dbHead - from > FleetLimits.MaxDeltaCatchUp || from + 1 < oldest)
                cursor = await SnapshotAsync(relay, w, ct);
            else
            {
                w.Heartbeat(dbHead);   // tells the relay its resume point was accepted
                await w.FlushAsync(ct);
            }
            var batch = new List<PeerChange>(FleetLimits.ChangeBatch);
            while (!ct.IsCancellationRequested)
            {
                IReadOnlyList<PeerChange> changes = batch;
                if (!hub.TryCopy(cursor, 1024, batch))
                {
                    long after = cursor;
                    changes = await ReadAsync(tx => tx.ChangesAfterAsync(after, FleetLimits.ChangeBatch), ct);
                    if (changes.Count > 0 && changes[0].Revision != cursor + 1)
                    {
                        cursor = await SnapshotAsync(relay, w, ct);   // compacted past the relay's cursor
                        continue;
                    }
                }
                if (changes.Count > 0)
                {
                    foreach (var change in changes)
                    {
                        w.Change(change);
                        if (w.Unflushed >= FlushBytes) await w.FlushAsync(ct);
                    }
                    cursor = changes[^1].Revision;
                    metrics.DeltasSent.Add(changes.Count);
                    await w.FlushAsync(ct);
                    continue;
                }
                if (!await hub.WaitAsync(cursor, FleetLimits.HeartbeatInterval, ct))
                {
                    w.Heartbeat(Math.Max(cursor, hub.Head));
                    await w.FlushAsync(ct);
                }
            }
        }
        finally { metrics.Subscribers.Add(-1); }
    }

    /// <summary>Reads through the peer log's slice of the store only.</summary>
    private Task<T> ReadAsync<T>(Func<IPeerLogTx, Task<T>> work, CancellationToken ct) => store.ReadAsync(tx => work(tx), ct);

    /// <summary>Writes the whole set as of one consistent revision; returns that revision.</summary>
    private async Task<long> SnapshotAsync(Machine relay, IPeerStreamWriter w, CancellationToken ct)
    {
        metrics.Snapshots.Add(1);
        return await ReadAsync(async tx =>
        {
            var state = await tx.PeerStateAsync(forUpdate: false);
            long count = await tx.CountDevicesAsync(null);
            Log.RelaySnapshot(logger, relay.Id, state.Revision);
            w.SnapshotBegin(state.Revision, count);
            await foreach (var peer in tx.AllPeersAsync(ct))
            {
                w.Peer(peer.PublicKey, peer.Ipv4, peer.Ipv6);
                if (w.Unflushed >= FlushBytes) await w.FlushAsync(ct);
            }
            w.SnapshotEnd(state.Revision, state.SetHash);
            await w.FlushAsync(ct);
            return state.Revision;
        }, ct);
    }
}

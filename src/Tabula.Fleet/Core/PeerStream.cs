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
/// <remarks>
/// The stream holds its relay's authority only as long as the database does: before it writes anything (a snapshot,
/// a batch of deltas, a heartbeat) and whenever any machine changes (<see cref="MachineEvents"/>, in any instance), it
/// reads the machine again by the hash of the token it was opened with. A rotated token (the machine enrolled again)
/// or a state that may not stream (retired, awaiting) ends the stream before the next byte: the relay's retry is then
/// refused. The check reads after the batch it guards was read, so no change committed after the machine lost its
/// authority reaches it.
/// </remarks>
public sealed class PeerStream(IStore store, PeerHub hub, MachineEvents machineEvents, FleetMetrics metrics, ILogger<PeerStream> logger)
{
    private const int FlushBytes = 64 * 1024;

    /// <summary>The states whose relays receive peers: provisioned (burn-in), deployed, draining (finishing sessions).</summary>
    public static bool MayStream(MachineState state) => state is MachineState.Provisioned or MachineState.Deployed or MachineState.Draining;

    public async Task RunAsync(Machine relay, byte[] relayTokenHash, long from, IPeerStreamWriter w, CancellationToken ct)
    {
        await hub.Started.WaitAsync(ct);
        Log.RelaySubscribed(logger, relay.Id, from);
        metrics.Subscribers.Add(1);
        try
        {
            long cursor = from;
            long machinesSeen = machineEvents.Version;
            var (dbHead, oldest, authority) = await ReadAsync(async tx =>
                (await tx.HeadRevisionAsync(), await tx.OldestChangeAsync(), await AuthorityAsync(tx, relay.Id, relayTokenHash)), ct);
            if (authority is not null) { End(relay, authority); return; }
            if (from <= 0 || from > dbHead || dbHead - from > FleetLimits.MaxDeltaCatchUp || from + 1 < oldest)
            {
                if (await SnapshotAsync(relay, relayTokenHash, w, ct) is not { } revision) return;
                cursor = revision;
            }
            else
            {
                w.Heartbeat(dbHead);   // tells the relay its resume point was accepted
                await w.FlushAsync(ct);
            }
            var batch = new List<PeerChange>(FleetLimits.ChangeBatch);
            while (!ct.IsCancellationRequested)
            {
                IReadOnlyList<PeerChange> changes = batch;
                // The version before the check: a machine change during it wakes the wait below at once.
                machinesSeen = machineEvents.Version;
                if (hub.TryCopy(cursor, 1024, batch))
                {
                    if (batch.Count > 0 && await ReadAsync(tx => AuthorityAsync(tx, relay.Id, relayTokenHash), ct) is { } lost)
                    {
                        End(relay, lost);
                        return;
                    }
                }
                else
                {
                    long after = cursor;
                    (changes, authority) = await ReadAsync(async tx =>
                    {
                        var read = await tx.ChangesAfterAsync(after, FleetLimits.ChangeBatch);
                        return (read, await AuthorityAsync(tx, relay.Id, relayTokenHash));
                    }, ct);
                    if (authority is not null) { End(relay, authority); return; }
                    if (changes.Count > 0 && changes[0].Revision != cursor + 1)
                    {
                        // compacted past the relay's cursor
                        if (await SnapshotAsync(relay, relayTokenHash, w, ct) is not { } revision) return;
                        cursor = revision;
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
                var wake = await WaitAsync(cursor, machinesSeen, ct);
                if (wake == Wake.Peers) continue;   // the batch read checks the authority
                if (await ReadAsync(tx => AuthorityAsync(tx, relay.Id, relayTokenHash), ct) is { } ended)
                {
                    End(relay, ended);
                    return;
                }
                if (wake == Wake.Heartbeat)
                {
                    w.Heartbeat(Math.Max(cursor, hub.Head));
                    await w.FlushAsync(ct);
                }
            }
        }
        finally { metrics.Subscribers.Add(-1); }
    }

    private enum Wake { Peers, Machines, Heartbeat }

    /// <summary>Waits for a change after <paramref name="cursor"/>, a machine change, or the heartbeat interval.</summary>
    private async Task<Wake> WaitAsync(long cursor, long machinesSeen, CancellationToken ct)
    {
        var peers = hub.Pulse;
        var machines = machineEvents.Pulse;
        if (hub.Head > cursor) return Wake.Peers;
        if (machineEvents.Version != machinesSeen) return Wake.Machines;
        try
        {
            var first = await Task.WhenAny(peers, machines).WaitAsync(FleetLimits.HeartbeatInterval, ct);
            return first == peers ? Wake.Peers : Wake.Machines;
        }
        catch (TimeoutException) { return hub.Head > cursor ? Wake.Peers : Wake.Heartbeat; }
    }

    /// <summary>Null while the token still names this machine in a state that may stream; otherwise why not.</summary>
    private static async Task<string?> AuthorityAsync(IPeerLogTx tx, string machineId, byte[] relayTokenHash)
    {
        var machine = await tx.GetMachineByRelayTokenAsync(relayTokenHash);
        if (machine is null || machine.Id != machineId) return "its relay token is no longer valid";
        return MayStream(machine.State) ? null : $"it is {machine.State.Name()}";
    }

    private void End(Machine relay, string why)
    {
        metrics.StreamsRevoked.Add(1);
        Log.RelayStreamRevoked(logger, relay.Id, why);
    }

    /// <summary>Reads through the peer log's slice of the store only.</summary>
    private Task<T> ReadAsync<T>(Func<IPeerLogTx, Task<T>> work, CancellationToken ct) => store.ReadAsync(tx => work(tx), ct);

    /// <summary>
    /// Writes the whole set as of one consistent revision, read in the same transaction as the relay's authority;
    /// returns that revision, or null (nothing written) when the relay has lost its authority.
    /// </summary>
    private async Task<long?> SnapshotAsync(Machine relay, byte[] relayTokenHash, IPeerStreamWriter w, CancellationToken ct)
    {
        return await ReadAsync<long?>(async tx =>
        {
            if (await AuthorityAsync(tx, relay.Id, relayTokenHash) is { } lost)
            {
                End(relay, lost);
                return null;
            }
            metrics.Snapshots.Add(1);
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

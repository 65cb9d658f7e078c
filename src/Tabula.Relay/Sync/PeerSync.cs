using System.Diagnostics;
using System.Net;
using Tabula.Relay.Serving;
using Tabula.Fleet.Protocol;
using Tabula.Relay.Fleet;
using Tabula.WireGuard;
using Tabula.WireGuard.Keys;

namespace Tabula.Relay.Sync;

/// <summary>
/// Keeps the WireGuard device's peers equal to the controller's set (docs/fleet.md "Peer stream"):
/// <list type="bullet">
/// <item>from revision 0 (first start, or after any doubt) a snapshot, applied in batches, the first replacing every
/// peer; its running hash must equal <c>snapshot_end</c>'s;</item>
/// <item>then deltas, each applied as it arrives (one netlink or UAPI call), each revision exactly the last plus one,
/// the running set hash compared with the one the line carries;</item>
/// <item>a gap resubscribes from the last applied revision; a hash mismatch, a device error or a malformed line
/// resubscribes from 0 (a full snapshot); a lost connection resubscribes from the last applied revision with
/// backoff (1 s doubling to 30 s, with jitter) while the device keeps serving the peers it has.</item>
/// </list>
/// The agent holds no copy of the set: the device is the set, and 32 bytes of hash say whether it is right.
/// Every change this class makes to the device runs under one gate that <see cref="EndpointAmnesia"/> shares
/// (<see cref="ExclusiveAsync"/>), so nothing else changes the peers between a read and a write. A removal flushes the
/// removed device's tracked connections through <paramref name="flush"/> when one is given. Nothing here prints a line
/// per device change: adds and removes are counted (<see cref="Counters"/>) and the health line shows the totals.
/// </summary>
public sealed class PeerSync(IWireGuardControl device, FleetClient fleet, RelayLog log, TimeProvider time, IConnectionFlush? flush = null)
{
    const int SnapshotBatch = 2048;
    static readonly TimeSpan StreamIdle = TimeSpan.FromSeconds(45);

    readonly byte[] setHash = PeerSetHash.Empty;
    readonly SemaphoreSlim gate = new(1, 1);
    bool needSnapshot = true;
    long applied;
    int peers;
    long added, removed, flushed, flushFailures, deviceChanges;
    /// <summary>Set by a change outside the stream that may have left the device short of the set (see <see cref="DeviceInDoubt"/>).</summary>
    int inDoubt;

    /// <summary>The revision the device holds (0 before the first snapshot).</summary>
    public long AppliedRevision => Volatile.Read(ref applied);
    public int PeerCount => Volatile.Read(ref peers);
    /// <summary>The current subscription has applied at least one line (its backoff starts over when it ends).</summary>
    bool followed;

    /// <summary>How many times the stream was (re)opened: tests watch it across controller restarts.</summary>
    public int Subscriptions { get; private set; }

    /// <summary>Totals since start: what the console and health report may show instead of a line per change.</summary>
    public PeerSyncCounters Counters => new(Interlocked.Read(ref added), Interlocked.Read(ref removed),
        Interlocked.Read(ref flushed), Interlocked.Read(ref flushFailures));

    /// <summary>Grows by one with every change this class applies to the device; read it before a read of the device to
    /// know, under <see cref="ExclusiveAsync"/>, whether the stream changed the device since.</summary>
    public long DeviceChanges => Interlocked.Read(ref deviceChanges);

    /// <summary>Runs <paramref name="change"/> while the stream applies nothing to the device.</summary>
    public async Task<T> ExclusiveAsync<T>(Func<Task<T>> change, CancellationToken ct)
    {
        await gate.WaitAsync(ct);
        try { return await change(); }
        finally { gate.Release(); }
    }

    /// <summary>
    /// A change outside the stream failed part way and the device may lack peers of the set, which the running hash
    /// cannot see (it is computed from the lines): the stream resubscribes from 0 at its next line (a heartbeat comes
    /// every 15 s) and the snapshot restores the set.
    /// </summary>
    public void DeviceInDoubt() => Volatile.Write(ref inDoubt, 1);

    async Task ApplyAsync(DeviceUpdate update, CancellationToken ct)
    {
        await gate.WaitAsync(ct);
        try
        {
            Interlocked.Increment(ref deviceChanges);
            await device.ApplyAsync(update, ct);
        }
        finally { gate.Release(); }
    }

    /// <summary>Follows the stream until cancelled. Only an invalid relay token ends it (the agent then enrolls again).</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var backoff = new Backoff();
        while (!ct.IsCancellationRequested)
        {
            string reason;
            try
            {
                await FollowAsync(ct);
                reason = "the controller closed the stream";
            }
            catch (FleetCallException e) when (!e.NeedsEnrollment) { reason = $"HTTP {e.Status} {e.Code}"; }
            catch (RelayException e) { reason = $"{e.ReasonName}: {e.Detail}"; }
            catch (PeerStreamException e) { reason = e.Message; }
            catch (WireGuardException e)
            {
                needSnapshot = true;   // the device may hold part of an update: only a full set is certain
                reason = $"device: {e.Message}";
            }
            catch (IOException e) { reason = $"connection: {e.Message}"; }
            catch (HttpRequestException e) { reason = $"connection: {e.Message}"; }
            if (ct.IsCancellationRequested) break;
            if (followed)
                backoff.Reset();   // the last subscription worked: a controller restart after hours waits 1 s, not 30 s
            followed = false;
            var delay = backoff.Next();
            log.Resubscribe(reason, needSnapshot ? 0 : AppliedRevision, delay);
            await Task.Delay(delay, time, ct);
        }
    }

    async Task FollowAsync(CancellationToken ct)
    {
        long from = needSnapshot ? 0 : AppliedRevision;
        await using var stream = await fleet.OpenPeersAsync(from, ct);
        Subscriptions++;
        var reader = new PeerLineReader(stream, StreamIdle);
        while (await reader.ReadAsync(ct) is { } line)
        {
            if (Interlocked.Exchange(ref inDoubt, 0) == 1)
            {
                needSnapshot = true;
                throw new PeerStreamException(PeerStreamError.HashMismatch, "a change outside the stream failed part way; the device may lack peers");
            }
            switch (line.Type)
            {
                case PeerLineType.Snapshot:
                    await ApplySnapshotAsync(line, reader, ct);
                    break;
                case PeerLineType.Add or PeerLineType.Remove:
                    await ApplyDeltaAsync(line, ct);
                    break;
                case PeerLineType.Heartbeat:
                    if (needSnapshot)
                        throw new PeerStreamException(PeerStreamError.Unexpected, "a heartbeat before the snapshot a fresh subscription needs");
                    break;
                default:
                    throw new PeerStreamException(PeerStreamError.Unexpected, $"a {line.Type} line outside a snapshot");
            }
            followed = true;
        }
    }

    async Task ApplySnapshotAsync(PeerLine begin, PeerLineReader reader, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        needSnapshot = true;
        byte[] hash = PeerSetHash.Empty;
        var batch = new List<PeerUpdate>(SnapshotBatch);
        bool first = true;
        long count = 0;
        while (true)
        {
            var line = await reader.ReadAsync(ct) ?? throw new PeerStreamException(PeerStreamError.Truncated, "the stream ended inside a snapshot");
            if (line.Type == PeerLineType.SnapshotEnd)
            {
                if (line.Revision != begin.Revision || count != begin.Count)
                    throw new PeerStreamException(PeerStreamError.SnapshotMismatch, $"snapshot of {begin.Count} at {begin.Revision} ended with {count} at {line.Revision}");
                if (batch.Count > 0 || first)
                    await ApplyAsync(new DeviceUpdate { ReplacePeers = first, Peers = batch }, ct);
                if (!hash.AsSpan().SequenceEqual(line.Hash))
                    throw new PeerStreamException(PeerStreamError.HashMismatch, $"the snapshot at revision {line.Revision} does not hash to the controller's value");
                hash.CopyTo(setHash, 0);
                Volatile.Write(ref peers, (int)count);
                Volatile.Write(ref applied, line.Revision);
                needSnapshot = false;
                log.Snapshot(line.Revision, (int)count, clock.Elapsed);
                return;
            }
            if (line.Type != PeerLineType.Peer || !line.HasPeer)
                throw new PeerStreamException(PeerStreamError.Unexpected, $"a {line.Type} line inside a snapshot");
            PeerSetHash.Toggle(hash, line.PublicKey.Bytes, line.Ipv4, line.Ipv6);
            batch.Add(Upsert(line));
            count++;
            if (batch.Count == SnapshotBatch)
            {
                await ApplyAsync(new DeviceUpdate { ReplacePeers = first, Peers = batch }, ct);
                batch.Clear();
                first = false;
            }
        }
    }

    async Task ApplyDeltaAsync(PeerLine line, CancellationToken ct)
    {
        if (needSnapshot)
            throw new PeerStreamException(PeerStreamError.Unexpected, "a delta before the snapshot a fresh subscription needs");
        if (line.Revision != AppliedRevision + 1)
        {
            // Revisions are dense; anything else is a bug somewhere: resume from what the device surely has.
            throw new PeerStreamException(PeerStreamError.RevisionGap, $"expected revision {AppliedRevision + 1}, got {line.Revision}");
        }
        if (!line.HasPeer)
            throw new PeerStreamException(PeerStreamError.MalformedLine, $"a {line.Type} line without a peer");
        bool add = line.Type == PeerLineType.Add;
        var update = add ? Upsert(line) : PeerUpdate.RemovePeer(new WireGuardKey(line.PublicKey.Bytes));
        await ApplyAsync(new DeviceUpdate { Peers = [update] }, ct);
        if (!add)
            FlushConnections(line.Ipv4!, line.Ipv6!);   // before the revision counts as applied: applied means cut off
        PeerSetHash.Toggle(setHash, line.PublicKey.Bytes, line.Ipv4, line.Ipv6);
        Volatile.Write(ref peers, PeerCount + (add ? 1 : -1));
        Volatile.Write(ref applied, line.Revision);
        if (add) Interlocked.Increment(ref added);
        else Interlocked.Increment(ref removed);
        if (!setHash.AsSpan().SequenceEqual(line.Hash))
        {
            needSnapshot = true;
            throw new PeerStreamException(PeerStreamError.HashMismatch, $"after revision {line.Revision} the set differs from the controller's");
        }
    }

    /// <summary>
    /// The removed peer can no longer send, but connections NATed for it would live on in conntrack until they time out
    /// (minutes for TCP): delete them, so a removed device's traffic stops within seconds. A failure is counted and
    /// never stops the stream (the entries then expire on their own).
    /// </summary>
    void FlushConnections(IPAddress ipv4, IPAddress ipv6)
    {
        if (flush is null) return;
        try
        {
            Interlocked.Add(ref flushed, flush.Flush(ipv4, ipv6));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Interlocked.Increment(ref flushFailures);
        }
    }

    /// <summary>The wire's public key becomes Tabula.WireGuard's key type here, at the edge into the device.</summary>
    static PeerUpdate Upsert(PeerLine line) => new()
    {
        PublicKey = new WireGuardKey(line.PublicKey!.Bytes),
        ReplaceAllowedIps = true,
        AllowedIps = [new AllowedIp(line.Ipv4!, 32), new AllowedIp(line.Ipv6!, 128)],
    };
}

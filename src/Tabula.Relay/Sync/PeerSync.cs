using System.Diagnostics;
using System.Net;
using Tabula.Relay.Serving;
using Tabula.Fleet.Protocol;
using Tabula.Relay.Fleet;
using Tabula.WireGuard;

namespace Tabula.Relay.Sync;

/// <summary>
/// Keeps the WireGuard device's peers equal to the controller's set (docs/fleet.md "Peer stream", docs/relay.md "Peer
/// sync" and "Peer limit"):
/// <list type="bullet">
/// <item>from revision 0 (first start, or after any doubt) a snapshot, read whole and checked against
/// <c>snapshot_end</c>'s hash before the device is touched, then applied as a diff against what the device holds: peers
/// the set no longer has are removed, changed ones updated in place, missing ones added. A peer already served is never
/// removed and added again, so a resubscription drops nobody (the old "first batch replaces every peer" did);</item>
/// <item>then deltas, each applied as it arrives (one netlink or UAPI call), each revision exactly the last plus one,
/// the running set hash compared with the one the line carries;</item>
/// <item>a gap resubscribes from the last applied revision; a hash mismatch, a device error or a malformed line
/// resubscribes from 0 (a full snapshot); a lost connection resubscribes from the last applied revision with
/// backoff (1 s doubling to 30 s, with jitter) while the device keeps serving the peers it has.</item>
/// </list>
/// The device holds at most <paramref name="peerLimit"/> peers (kernel WireGuard's 2^20 by default). The agent counts
/// and enforces that limit itself rather than waiting for the device's refusal: the kernel's only comes at 2^20 and
/// wireguard-go's at 2^16, too many for a test, and counting lets the agent keep the rest in order. Past it, or when the
/// device refuses an add anyway (read back: what got in stays), the apply is partial: what is in stays served, the rest
/// waits (in the set's order) and goes in as removals free room. Peers whose tunnel addresses lie outside
/// <see cref="Pools"/> are never installed. Both show in <see cref="Status"/> (the health report). The running hash is
/// over the controller's set, so it still proves the agent follows the set exactly; what the device lacks of the set
/// is the status's business.
/// Every change this class makes to the device runs under one gate that <see cref="EndpointAmnesia"/> shares
/// (<see cref="ExclusiveAsync"/>), so nothing else changes the peers between a read and a write. A removal flushes the
/// removed device's tracked connections through <paramref name="flush"/> when one is given. Nothing here prints a line
/// per device change: adds and removes are counted (<see cref="Counters"/>) and the health line shows the totals.
/// </summary>
public sealed class PeerSync(IWireGuardControl device, FleetClient fleet, RelayLog log, TimeProvider time, IConnectionFlush? flush = null,
    int peerLimit = PeerCapacity.KernelMaxPeers)
{
    const int SnapshotBatch = 2048;
    /// <summary>The most peers a snapshot may announce: twice the kernel's limit (a controller past its capacity still gets
    /// a partial relay rather than none), held as 52-byte <see cref="SetPeer"/>s while reconciling, ~120 MB at this bound.</summary>
    public const int MaxSetPeers = 2 * PeerCapacity.KernelMaxPeers;
    static readonly TimeSpan StreamIdle = TimeSpan.FromSeconds(45);

    readonly int limit = peerLimit >= 1 ? peerLimit : throw new ArgumentOutOfRangeException(nameof(peerLimit), "a device holds at least one peer");
    readonly byte[] setHash = PeerSetHash.Empty;
    readonly SemaphoreSlim gate = new(1, 1);
    bool needSnapshot = true;
    long applied;
    int peers;
    long added, removed, flushed, flushFailures, deviceChanges;
    /// <summary>Set by a change outside the stream that may have left the device short of the set (see <see cref="DeviceInDoubt"/>).</summary>
    int inDoubt;

    // What the device lacks of the set, changed under the gate only; the status reads the published counts.
    readonly Dictionary<PeerKey, LinkedListNode<SetPeer>> pending = [];
    readonly LinkedList<SetPeer> pendingOrder = new();
    readonly HashSet<PeerKey> outsidePool = [];
    /// <summary>Peers of the set on the device (as this class put them there).</summary>
    int installed;
    int pendingCount, outsideCount;
    /// <summary><see cref="PeerLimit"/>, lowered to what the device held when it refused an add; reset by a snapshot.</summary>
    int cap = peerLimit;
    volatile string? deviceRefusal;

    /// <summary>The revision the device holds (0 before the first snapshot).</summary>
    public long AppliedRevision => Volatile.Read(ref applied);
    /// <summary>Peers in the controller's set at <see cref="AppliedRevision"/> (the device may hold fewer: <see cref="Status"/>).</summary>
    public int PeerCount => Volatile.Read(ref peers);
    /// <summary>The current subscription has applied at least one line (its backoff starts over when it ends).</summary>
    bool followed;

    /// <summary>How many times the stream was (re)opened: tests watch it across controller restarts.</summary>
    public int Subscriptions { get; private set; }

    /// <summary>The most peers this agent puts on the device.</summary>
    public int PeerLimit => limit;

    /// <summary>The tunnel pools peers must lie in; the agent sets the relay's own from its config before following.</summary>
    public TunnelPools Pools { get; set; } = TunnelPools.Default;

    /// <summary>Totals since start: what the console and health report may show instead of a line per change.</summary>
    public PeerSyncCounters Counters => new(Interlocked.Read(ref added), Interlocked.Read(ref removed),
        Interlocked.Read(ref flushed), Interlocked.Read(ref flushFailures));

    /// <summary>How much of the set the device serves, and why not all of it (counts only).</summary>
    public PeerSyncStatus Status
    {
        get
        {
            int wanted = PeerCount, waiting = Volatile.Read(ref pendingCount), outside = Volatile.Read(ref outsideCount);
            var reasons = new List<string>(2);
            if (waiting > 0) reasons.Add(deviceRefusal is { } errno ? "device_refused:" + errno : "peer_limit");
            if (outside > 0) reasons.Add("outside_pool");
            return new PeerSyncStatus(wanted, Math.Max(0, wanted - waiting - outside), waiting, outside,
                reasons.Count == 0 ? null : string.Join(',', reasons));
        }
    }

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
    /// every 15 s) and the snapshot's diff restores the set.
    /// </summary>
    public void DeviceInDoubt() => Volatile.Write(ref inDoubt, 1);

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
        if (begin.Count is < 0 or > MaxSetPeers)
            throw new PeerStreamException(PeerStreamError.SnapshotMismatch, $"a snapshot of {begin.Count} peers (at most {MaxSetPeers})");
        byte[] hash = PeerSetHash.Empty;
        // Read whole before the device is touched: a snapshot that breaks off or does not hash right changes nothing.
        var set = new List<SetPeer>((int)Math.Min(begin.Count, SnapshotBatch * 16L));
        while (true)
        {
            var line = await reader.ReadAsync(ct) ?? throw new PeerStreamException(PeerStreamError.Truncated, "the stream ended inside a snapshot");
            if (line.Type == PeerLineType.SnapshotEnd)
            {
                if (line.Revision != begin.Revision || set.Count != begin.Count)
                    throw new PeerStreamException(PeerStreamError.SnapshotMismatch, $"snapshot of {begin.Count} at {begin.Revision} ended with {set.Count} at {line.Revision}");
                if (!hash.AsSpan().SequenceEqual(line.Hash))
                    throw new PeerStreamException(PeerStreamError.HashMismatch, $"the snapshot at revision {line.Revision} does not hash to the controller's value");
                await ReconcileAsync(set, ct);
                hash.CopyTo(setHash, 0);
                Volatile.Write(ref peers, set.Count);
                Volatile.Write(ref applied, line.Revision);
                needSnapshot = false;
                log.Snapshot(line.Revision, set.Count, clock.Elapsed);
                if (Status is { PartialReason: { } reason } status)
                    log.Partial(status.Wanted, status.Applied, status.Pending, status.OutsidePool, limit, reason);
                return;
            }
            if (line.Type != PeerLineType.Peer || !line.HasPeer)
                throw new PeerStreamException(PeerStreamError.Unexpected, $"a {line.Type} line inside a snapshot");
            if (set.Count == begin.Count)
                throw new PeerStreamException(PeerStreamError.SnapshotMismatch, $"more peers than the {begin.Count} announced");
            PeerSetHash.Toggle(hash, line.PublicKey.Bytes, line.Ipv4, line.Ipv6);
            set.Add(SetPeer.From(line));
        }
    }

    /// <summary>
    /// Makes the device hold <paramref name="set"/>, as much of it as fits, by a diff under the gate: read the device;
    /// remove the peers the set lacks (flushing their connections) first, which frees room; update in place the ones
    /// whose addresses changed; add the missing ones in the set's order while there is room; the rest wait. Peers already
    /// on the device are not touched, so their sessions and the customers' connections go on.
    /// </summary>
    async Task ReconcileAsync(List<SetPeer> set, CancellationToken ct)
    {
        await gate.WaitAsync(ct);
        try
        {
            Interlocked.Increment(ref deviceChanges);
            pending.Clear();
            pendingOrder.Clear();
            outsidePool.Clear();
            cap = limit;
            deviceRefusal = null;
            // What the device holds, by key; whatever the set does not claim is left in it: stale.
            var stale = new Dictionary<PeerKey, IReadOnlyList<AllowedIp>>();
            using (var state = await device.GetAsync(ct))
                foreach (var peer in state.Peers)
                    stale[PeerKey.From(peer.PublicKey.Bytes)] = peer.AllowedIps;
            var changed = new List<SetPeer>();
            var missing = new List<SetPeer>();
            int kept = 0;
            foreach (var peer in set)
            {
                if (!Pools.Contains(peer)) outsidePool.Add(peer.Key);   // and removed below if the device had it
                else if (stale.Remove(peer.Key, out var allowed))
                {
                    kept++;
                    if (!peer.SameAddresses(allowed)) changed.Add(peer);
                }
                else missing.Add(peer);
            }

            var gone = stale.ToList();
            for (int i = 0; i < gone.Count; i += SnapshotBatch)
            {
                var batch = gone.GetRange(i, Math.Min(SnapshotBatch, gone.Count - i));
                await device.ApplyAsync(new DeviceUpdate { Peers = [.. batch.Select(p => PeerUpdate.RemovePeer(p.Key.ToKey()))] }, ct);
                foreach (var (_, allowed) in batch)
                    if (allowed.FirstOrDefault(ip => !ip.IsIPv6 && ip.Cidr == 32).Address is { } v4
                        && allowed.FirstOrDefault(ip => ip.IsIPv6 && ip.Cidr == 128).Address is { } v6)
                        FlushConnections(v4, v6);
            }
            for (int i = 0; i < changed.Count; i += SnapshotBatch)
                await device.ApplyAsync(new DeviceUpdate { Peers = [.. changed.GetRange(i, Math.Min(SnapshotBatch, changed.Count - i)).Select(p => p.ToUpsert())] }, ct);
            installed = kept;
            foreach (var peer in await AddWithinCapAsync(missing, ct))
                Enqueue(peer, last: true);
            Publish();
        }
        finally { gate.Release(); }
    }

    /// <summary>
    /// Adds <paramref name="peers"/> in order while the device has room (under the gate) and returns, in order, the ones
    /// it could not take. A device that refuses an add (its own peer limit, or memory) is read back: what got in counts
    /// as installed, the device's count becomes the cap (until the next snapshot), and nothing on it is touched.
    /// </summary>
    async Task<List<SetPeer>> AddWithinCapAsync(IReadOnlyList<SetPeer> peers, CancellationToken ct)
    {
        var left = new List<SetPeer>();
        int next = 0;
        while (next < peers.Count && installed < cap)
        {
            int take = Math.Min(SnapshotBatch, Math.Min(peers.Count - next, cap - installed));
            var batch = new List<SetPeer>(take);
            for (int i = 0; i < take; i++) batch.Add(peers[next + i]);
            next += take;
            try
            {
                await device.ApplyAsync(new DeviceUpdate { Peers = [.. batch.Select(p => p.ToUpsert())] }, ct);
                installed += take;
            }
            catch (WireGuardDeviceException e)
            {
                deviceRefusal = e.ErrorName;
                using var state = await device.GetAsync(ct);
                var onDevice = new HashSet<PeerKey>(state.Peers.Count);
                foreach (var peer in state.Peers) onDevice.Add(PeerKey.From(peer.PublicKey.Bytes));
                foreach (var peer in batch)
                    if (onDevice.Contains(peer.Key)) installed++;
                    else left.Add(peer);
                cap = Math.Min(cap, state.Peers.Count);
                break;
            }
        }
        for (; next < peers.Count; next++) left.Add(peers[next]);
        return left;
    }

    /// <summary>A removal freed room: the longest-waiting peers go in (under the gate); any the device refuses keep their place.</summary>
    async Task PromoteAsync(CancellationToken ct)
    {
        var front = new List<SetPeer>();
        for (var node = pendingOrder.First; node is not null && front.Count < cap - installed; node = node.Next)
            front.Add(node.Value);
        if (front.Count == 0) return;
        foreach (var peer in front) Unqueue(peer.Key);
        var left = await AddWithinCapAsync(front, ct);
        for (int i = left.Count - 1; i >= 0; i--)
            Enqueue(left[i], last: false);
    }

    void Enqueue(SetPeer peer, bool last)
    {
        Unqueue(peer.Key);
        pending[peer.Key] = last ? pendingOrder.AddLast(peer) : pendingOrder.AddFirst(peer);
    }

    bool Unqueue(PeerKey key)
    {
        if (!pending.Remove(key, out var node)) return false;
        pendingOrder.Remove(node);
        return true;
    }

    void Publish()
    {
        Volatile.Write(ref pendingCount, pending.Count);
        Volatile.Write(ref outsideCount, outsidePool.Count);
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
        var peer = SetPeer.From(line);
        await gate.WaitAsync(ct);
        try
        {
            Interlocked.Increment(ref deviceChanges);
            if (add && !Pools.Contains(peer))
                outsidePool.Add(peer.Key);
            else if (add)
            {
                foreach (var left in await AddWithinCapAsync([peer], ct))
                    Enqueue(left, last: true);
            }
            else if (!outsidePool.Remove(peer.Key) && !Unqueue(peer.Key))   // those two were never on the device
            {
                await device.ApplyAsync(new DeviceUpdate { Peers = [PeerUpdate.RemovePeer(peer.Key.ToKey())] }, ct);
                installed = Math.Max(0, installed - 1);
                FlushConnections(line.Ipv4!, line.Ipv6!);   // before the revision counts as applied: applied means cut off
                await PromoteAsync(ct);
            }
            Publish();
        }
        finally { gate.Release(); }
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
}

using System.Diagnostics;
using System.Net;
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
/// </summary>
public sealed class PeerSync(IWireGuardControl device, FleetClient fleet, RelayLog log, TimeProvider time)
{
    const int SnapshotBatch = 2048;
    static readonly TimeSpan StreamIdle = TimeSpan.FromSeconds(45);

    readonly byte[] setHash = PeerSetHash.Empty;
    bool needSnapshot = true;
    long applied;
    int peers;

    /// <summary>The revision the device holds (0 before the first snapshot).</summary>
    public long AppliedRevision => Volatile.Read(ref applied);
    public int PeerCount => Volatile.Read(ref peers);
    /// <summary>The current subscription has applied at least one line (its backoff starts over when it ends).</summary>
    bool followed;

    /// <summary>How many times the stream was (re)opened: tests watch it across controller restarts.</summary>
    public int Subscriptions { get; private set; }

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
                    await device.ApplyAsync(new DeviceUpdate { ReplacePeers = first, Peers = batch }, ct);
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
                await device.ApplyAsync(new DeviceUpdate { ReplacePeers = first, Peers = batch }, ct);
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
        long started = time.GetTimestamp();
        var update = line.Type == PeerLineType.Add ? Upsert(line) : PeerUpdate.RemovePeer(new WireGuardKey(line.PublicKey.Bytes));
        await device.ApplyAsync(new DeviceUpdate { Peers = [update] }, ct);
        PeerSetHash.Toggle(setHash, line.PublicKey.Bytes, line.Ipv4, line.Ipv6);
        Volatile.Write(ref peers, PeerCount + (line.Type == PeerLineType.Add ? 1 : -1));
        Volatile.Write(ref applied, line.Revision);
        if (!setHash.AsSpan().SequenceEqual(line.Hash))
        {
            needSnapshot = true;
            throw new PeerStreamException(PeerStreamError.HashMismatch, $"after revision {line.Revision} the set differs from the controller's");
        }
        log.Delta(line.Type == PeerLineType.Add ? "add" : "remove", line.Revision, PeerCount, time.GetElapsedTime(started));
    }

    /// <summary>The wire's public key becomes Tabula.WireGuard's key type here, at the edge into the device.</summary>
    static PeerUpdate Upsert(PeerLine line) => new()
    {
        PublicKey = new WireGuardKey(line.PublicKey!.Bytes),
        ReplaceAllowedIps = true,
        AllowedIps = [new AllowedIp(line.Ipv4!, 32), new AllowedIp(line.Ipv6!, 128)],
    };
}

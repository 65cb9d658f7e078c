using System.Buffers.Binary;
using Tabula.Relay.Sync;
using Tabula.WireGuard;
using Tabula.WireGuard.Keys;

namespace Tabula.Relay.Serving;

/// <summary>
/// Endpoint amnesia, as Mullvad's relays do it: WireGuard keeps each peer's last endpoint (the customer's real
/// address) and its counters for as long as the peer exists. A peer with an endpoint and no handshake for
/// <paramref name="idle"/> (3 min on a relay: REJECT_AFTER_TIME, so its session keys are dead anyway and the customer's
/// next packet starts a new handshake) is removed and added again with its public key and allowed IPs only. A peer
/// that never completed a handshake but has an endpoint (an initiation that was never confirmed) is forgotten once it
/// has been seen so for the same time, so a handshake in progress is never cut. A seized running relay then holds no
/// address of a customer who is not connected.
/// </summary>
/// <remarks>
/// Races with <see cref="PeerSync"/>: the remove and re-add run under PeerSync's gate (<see cref="PeerSync.ExclusiveAsync"/>),
/// so no delta lands between the decision and the write. The device is read outside the gate (most sweeps find
/// nothing and must not hold up the stream); if the stream changed the device since that read, it is read again under
/// the gate and the decision is made on what the device holds now. So a peer the fleet removed meanwhile is never added
/// back, and one whose addresses changed is re-added with the new ones. What is re-added is exactly the key and allowed
/// IPs the device had (the fleet sets nothing else on a peer), so the set, and the peer-set hash over it, stay equal.
/// Keys are held only between a read and its write, and never printed: the console sees <see cref="Forgotten"/>.
/// </remarks>
public sealed class EndpointAmnesia(IWireGuardControl device, PeerSync sync, TimeSpan idle, TimeProvider time)
{
    /// <summary>Peers seen with an endpoint and no handshake ever, and since when (they are not confirmed yet).</summary>
    Dictionary<PeerId, DateTimeOffset> unconfirmed = [];
    long forgotten, failures;

    /// <summary>Peers forgotten (removed and re-added without endpoint) since start.</summary>
    public long Forgotten => Interlocked.Read(ref forgotten);

    /// <summary>Sweeps that failed on the device.</summary>
    public long Failures => Interlocked.Read(ref failures);

    /// <summary>Sweeps every <paramref name="interval"/> until cancelled; a device failure is counted and noted (the
    /// message names the call and errno, never a peer), and the next sweep tries again.</summary>
    public async Task RunAsync(TimeSpan interval, RelayLog log, CancellationToken ct)
    {
        while (true)
        {
            await Task.Delay(interval, time, ct);
            try { await SweepAsync(ct); }
            catch (WireGuardException e)
            {
                Interlocked.Increment(ref failures);
                log.Note("amnesia", $"endpoint sweep failed: {e.Message}");
            }
        }
    }

    /// <summary>One sweep; returns how many peers it forgot.</summary>
    public async Task<int> SweepAsync(CancellationToken ct)
    {
        long changes = sync.DeviceChanges;
        var idlePeers = await FindIdleAsync(ct);
        if (idlePeers.Count == 0)
            return 0;
        return await sync.ExclusiveAsync(async () =>
        {
            if (sync.DeviceChanges != changes)
            {
                Dispose(idlePeers);
                idlePeers = await FindIdleAsync(ct);
            }
            try
            {
                if (idlePeers.Count > 0)
                    await ForgetAsync(idlePeers, ct);
                Interlocked.Add(ref forgotten, idlePeers.Count);
                return idlePeers.Count;
            }
            finally { Dispose(idlePeers); }
        }, ct);
    }

    async Task ForgetAsync(List<IdlePeer> idlePeers, CancellationToken ct)
    {
        try
        {
            await device.ApplyAsync(new DeviceUpdate { Peers = idlePeers.SelectMany(RemoveAndAdd) }, ct);
        }
        catch (Exception first) when (first is WireGuardException or OperationCanceledException)
        {
            // Updates are not atomic: some removals may have landed without their re-add. Upserts are idempotent, so
            // put every one back; if even that fails, the stream restores the set from a snapshot.
            try
            {
                await device.ApplyAsync(new DeviceUpdate { Peers = idlePeers.Select(p => p.Add()) }, CancellationToken.None);
            }
            catch (WireGuardException)
            {
                sync.DeviceInDoubt();
            }
            throw;
        }
    }

    static IEnumerable<PeerUpdate> RemoveAndAdd(IdlePeer peer)
    {
        yield return PeerUpdate.RemovePeer(peer.Key);
        yield return peer.Add();
    }

    async Task<List<IdlePeer>> FindIdleAsync(CancellationToken ct)
    {
        using var state = await device.GetAsync(ct);
        var now = time.GetUtcNow();
        var found = new List<IdlePeer>();
        var stillUnconfirmed = new Dictionary<PeerId, DateTimeOffset>();
        foreach (var peer in state.Peers)
        {
            if (peer.Endpoint is null)
                continue;
            DateTimeOffset since;
            if (peer.LastHandshake is { } at)
                since = at;
            else
            {
                var id = PeerId.Of(peer.PublicKey);
                since = unconfirmed.GetValueOrDefault(id, now);
                stillUnconfirmed[id] = since;
            }
            if (now - since >= idle)
                found.Add(new IdlePeer(new WireGuardKey(peer.PublicKey.Bytes), [.. peer.AllowedIps]));
        }
        unconfirmed = stillUnconfirmed;
        return found;
    }

    static void Dispose(List<IdlePeer> peers)
    {
        foreach (var peer in peers)
            peer.Key.Dispose();
    }

    /// <summary>A peer to forget: an owned copy of its key (the read-back state zeroes its own on dispose) and its allowed IPs.</summary>
    sealed record IdlePeer(WireGuardKey Key, AllowedIp[] AllowedIps)
    {
        public PeerUpdate Add() => new() { PublicKey = Key, ReplaceAllowedIps = true, AllowedIps = AllowedIps };
    }

    /// <summary>A public key as a dictionary key without a string copy of it.</summary>
    readonly record struct PeerId(UInt128 Low, UInt128 High)
    {
        public static PeerId Of(WireGuardKey key) => new(
            BinaryPrimitives.ReadUInt128LittleEndian(key.Bytes[..16]), BinaryPrimitives.ReadUInt128LittleEndian(key.Bytes[16..]));
    }
}

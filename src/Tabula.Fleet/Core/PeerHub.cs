using Microsoft.Extensions.Logging;
using Tabula.Fleet.Storage;

namespace Tabula.Fleet.Core;

/// <summary>
/// Fan-out of peer changes to every subscribed relay of this instance.
/// <list type="number">
/// <item>A writer commits a change (any instance) and pokes the hub (locally, or through NOTIFY).</item>
/// <item>One pump task reads the changes after its head from the database, in revision order, into a
///   bounded ring, advances <see cref="Head"/> and wakes all waiters at once.</item>
/// <item>Each subscriber keeps its own cursor and copies from the ring; one that fell out of the ring
///   reads from the database log instead, one too far behind gets a snapshot.</item>
/// </list>
/// The database is the only source of truth, so the ring never holds a revision that was not committed, and
/// no subscriber has a queue: a slow relay only holds its cursor and Kestrel's bounded response buffer.
/// </summary>
public sealed class PeerHub(IStore store, ILogger<PeerHub> logger)
{
    private readonly PeerChange?[] ring = new PeerChange?[FleetLimits.PeerRingCapacity];
    private readonly System.Threading.Channels.Channel<bool> pokes =
        System.Threading.Channels.Channel.CreateBounded<bool>(new System.Threading.Channels.BoundedChannelOptions(1)
            { FullMode = System.Threading.Channels.BoundedChannelFullMode.DropWrite });
    private long head = -1, ringStart;
    private TaskCompletionSource pulse = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The highest revision this instance has read; -1 before the first read.</summary>
    public long Head => Volatile.Read(ref head);

    public Task Started => started.Task;

    /// <summary>Completes when <see cref="Head"/> next moves (read it before checking <see cref="Head"/>).</summary>
    public Task Pulse => Volatile.Read(ref pulse).Task;

    public void Poke() => pokes.Writer.TryWrite(true);

    public async Task RunAsync(CancellationToken ct)
    {
        long initial = await store.ReadAsync(tx => tx.HeadRevisionAsync(), ct);
        ringStart = initial + 1;
        Volatile.Write(ref head, initial);
        started.TrySetResult();
        while (!ct.IsCancellationRequested)
        {
            try
            {
                using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    timeout.CancelAfter(FleetLimits.PollInterval);
                    try { await pokes.Reader.ReadAsync(timeout.Token); }
                    catch (OperationCanceledException) when (!ct.IsCancellationRequested) { }
                }
                await PumpAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (Exception e) when (e is System.Data.Common.DbException or IOException or TimeoutException or InvalidOperationException)
            {
                Log.PeerPumpFailed(logger, e);
                await Task.Delay(TimeSpan.FromSeconds(1), ct).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    private async Task PumpAsync(CancellationToken ct)
    {
        while (true)
        {
            long after = Head;
            var changes = await store.ReadAsync(tx => tx.ChangesAfterAsync(after, FleetLimits.ChangeBatch), ct);
            if (changes.Count == 0) return;
            if (changes[0].Revision != after + 1)
            {
                // The log was compacted past our head (instance was away long): restart the ring there.
                ringStart = changes[0].Revision;
            }
            foreach (var change in changes) ring[change.Revision % ring.Length] = change;
            Volatile.Write(ref head, changes[^1].Revision);
            Interlocked.Exchange(ref pulse, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            if (changes.Count < FleetLimits.ChangeBatch) return;
        }
    }

    /// <summary>
    /// Copies up to <paramref name="max"/> changes after <paramref name="after"/> from the ring into
    /// <paramref name="into"/>. False when they are no longer (or not yet) in memory: read the database.
    /// </summary>
    public bool TryCopy(long after, int max, List<PeerChange> into)
    {
        into.Clear();
        long h = Head;
        if (after >= h) return true;
        long lowest = Math.Max(Volatile.Read(ref ringStart), h - ring.Length + 1);
        if (after + 1 < lowest) return false;
        for (long r = after + 1; r <= h && into.Count < max; r++)
        {
            var change = Volatile.Read(ref ring[r % ring.Length]);
            if (change is null || change.Revision != r) { into.Clear(); return false; }   // overwritten meanwhile
            into.Add(change);
        }
        return true;
    }

    /// <summary>Waits until <see cref="Head"/> passes <paramref name="after"/>; false on timeout.</summary>
    public async Task<bool> WaitAsync(long after, TimeSpan timeout, CancellationToken ct)
    {
        var signal = Volatile.Read(ref pulse).Task;
        if (Head > after) return true;
        try
        {
            await signal.WaitAsync(timeout, ct);
            return true;
        }
        catch (TimeoutException) { return Head > after; }
    }
}

/// <summary>Wakes dashboards (Server-Sent Events) and invalidates the relay list when machines change, in any instance.</summary>
public sealed class MachineEvents
{
    private long version;
    private TaskCompletionSource pulse = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public long Version => Volatile.Read(ref version);

    /// <summary>Completes at the next change (read it before checking <see cref="Version"/>).</summary>
    public Task Pulse => Volatile.Read(ref pulse).Task;

    public void Changed()
    {
        Interlocked.Increment(ref version);
        Interlocked.Exchange(ref pulse, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    public async Task<bool> WaitAsync(long seen, TimeSpan timeout, CancellationToken ct)
    {
        var signal = Volatile.Read(ref pulse).Task;
        if (Version != seen) return true;
        try { await signal.WaitAsync(timeout, ct); return true; }
        catch (TimeoutException) { return Version != seen; }
    }
}

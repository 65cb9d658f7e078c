using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Tabula.Linux;

namespace Tabula.Provisioning.Transport;

/// <summary>
/// Tells waiting connections when their socket can be read or written: one thread on one edge-triggered epoll
/// set (Tabula.Linux's <see cref="Epoll"/>). OpenSSL reads and writes the socket itself (no copies through .NET's
/// socket layer), so the transport needs readiness, which <see cref="System.Net.Sockets.Socket"/> does not offer for
/// writing.
/// </summary>
internal sealed class ReadinessReactor : IDisposable
{
    const ulong WakeId = 0;   // the eventfd that stops the thread; sockets count from 1

    readonly Epoll _epoll;
    readonly EventFd _wake;
    readonly ConcurrentDictionary<ulong, SocketReadiness> _registered = new();
    readonly Thread _thread;
    long _nextId;
    int _disposed;

    public ReadinessReactor()
    {
        try
        {
            _epoll = Epoll.Create();
            _wake = EventFd.Create();
            _epoll.Add(_wake.Handle, EpollEvents.In, WakeId);
        }
        catch (LinuxException e)
        {
            _wake?.Dispose();
            _epoll?.Dispose();
            throw new TlsTransportException($"the readiness thread's epoll set failed: {e.Message}");
        }
        _thread = new Thread(Run) { IsBackground = true, Name = "tls-readiness" };
        _thread.Start();
    }

    /// <summary>Watches <paramref name="socket"/> (non-blocking) until the returned object is disposed.</summary>
    public SocketReadiness Register(SafeHandle socket)
    {
        ulong id = (ulong)Interlocked.Increment(ref _nextId);
        var readiness = new SocketReadiness(this, socket, id);
        _registered[id] = readiness;
        try
        {
            _epoll.Add(socket, EpollEvents.In | EpollEvents.Out | EpollEvents.ReadHangUp | EpollEvents.EdgeTriggered, id);
        }
        catch (LinuxException e)
        {
            _registered.TryRemove(id, out _);
            throw new TlsTransportException($"cannot watch the connection: {e.Message}");
        }
        return readiness;
    }

    internal void Unregister(SocketReadiness readiness)
    {
        // After Dispose the epoll set is closed; a socket already closed left the set by itself.
        if (_registered.TryRemove(readiness.Id, out _) && Volatile.Read(ref _disposed) == 0)
            _epoll.TryRemove(readiness.Socket);
    }

    void Run()
    {
        try
        {
            Wait();
        }
        catch (LinuxException)
        {
            // epoll_wait failing other than by a signal leaves nothing to wait on: stop, as before.
        }
        finally
        {
            _wake.Dispose();
            _epoll.Dispose();
        }
    }

    void Wait()
    {
        Span<EpollEvent> events = new EpollEvent[Epoll.MaxEventsPerWait];
        while (true)
        {
            int n = _epoll.Wait(events, -1);
            for (int i = 0; i < n; i++)
            {
                var (flags, id) = events[i];
                if (id == WakeId)
                    return;   // disposed
                if (!_registered.TryGetValue(id, out var readiness))
                    continue;
                if ((flags & (EpollEvents.In | EpollEvents.ReadHangUp | EpollEvents.HangUp | EpollEvents.Error)) != 0)
                    readiness.Readable.Set();
                if ((flags & (EpollEvents.Out | EpollEvents.HangUp | EpollEvents.Error)) != 0)
                    readiness.Writable.Set();
            }
        }
    }

    /// <summary>Stops the thread (it closes the epoll set itself, so no wait races the close).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _wake.Signal();
        _thread.Join(TimeSpan.FromSeconds(5));
    }
}

/// <summary>A registered socket's two readiness signals.</summary>
internal sealed class SocketReadiness(ReadinessReactor reactor, SafeHandle socket, ulong id) : IDisposable
{
    public SafeHandle Socket { get; } = socket;
    public ulong Id { get; } = id;
    public ReadinessSignal Readable { get; } = new();
    public ReadinessSignal Writable { get; } = new();

    /// <summary>Stops watching and wakes every waiter (they then see the connection closed).</summary>
    public void Dispose()
    {
        reactor.Unregister(this);
        Readable.Set();
        Writable.Set();
    }
}

/// <summary>
/// An edge-triggered readiness flag as a counter: read <see cref="Epoch"/>, try the operation, and if it would
/// block, wait for the epoch to move. An edge that arrives between the try and the wait is not lost, and the
/// reading and writing loops can wait on the same signal independently.
/// </summary>
internal sealed class ReadinessSignal
{
    readonly Lock _gate = new();
    long _epoch;
    TaskCompletionSource? _waiter;

    /// <summary>Read before every OpenSSL call, so without the lock: changes happen under it, and a stale value
    /// only makes the next <see cref="WaitAsync"/> return at once and the call be tried again.</summary>
    public long Epoch => Volatile.Read(ref _epoch);

    public void Set()
    {
        TaskCompletionSource? waiter;
        lock (_gate)
        {
            _epoch++;
            waiter = _waiter;
            _waiter = null;
        }
        waiter?.TrySetResult();
    }

    /// <summary>Completes once the signal has been set after <paramref name="seen"/> was read.</summary>
    public Task WaitAsync(long seen)
    {
        lock (_gate)
        {
            if (_epoch != seen)
                return Task.CompletedTask;
            return (_waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
    }
}

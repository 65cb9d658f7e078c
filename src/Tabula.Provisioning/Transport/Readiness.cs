using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tabula.Provisioning.Transport;

/// <summary>
/// Tells waiting connections when their socket can be read or written: one thread on one edge-triggered epoll
/// set. OpenSSL reads and writes the socket itself (no copies through .NET's socket layer), so the transport needs
/// readiness, which <see cref="System.Net.Sockets.Socket"/> does not offer for writing.
/// </summary>
internal sealed unsafe partial class ReadinessReactor : IDisposable
{
    const int EpollIn = 0x001, EpollOut = 0x004, EpollErr = 0x008, EpollHup = 0x010, EpollRdHup = 0x2000;
    const uint EpollEt = 1u << 31;
    const int EpollCtlAdd = 1, EpollCtlDel = 2;
    const int EpollCloexec = 0x80000;
    const int EfdCloexec = 0x80000, EfdNonblock = 0x800;
    const int EIntr = 4;
    const int MaxEvents = 256;

    // struct epoll_event is packed on x86-64 (12 bytes), naturally aligned elsewhere (16 bytes).
    static readonly int EventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    static readonly int DataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    const long WakeId = 0;   // the eventfd that stops the thread; sockets count from 1

    readonly int _epoll;
    readonly int _wake;
    readonly ConcurrentDictionary<long, SocketReadiness> _registered = new();
    readonly Thread _thread;
    long _nextId;
    int _disposed;

    public ReadinessReactor()
    {
        _epoll = epoll_create1(EpollCloexec);
        if (_epoll < 0)
            throw new TlsTransportException($"epoll_create1 failed: errno {Marshal.GetLastPInvokeError()}");
        _wake = eventfd(0, EfdCloexec | EfdNonblock);
        if (_wake < 0 || !Add(_wake, EpollIn, WakeId))
        {
            int errno = Marshal.GetLastPInvokeError();
            close(_epoll);
            throw new TlsTransportException($"eventfd for the readiness thread failed: errno {errno}");
        }
        _thread = new Thread(Run) { IsBackground = true, Name = "tls-readiness" };
        _thread.Start();
    }

    bool Add(int fd, uint events, long id)
    {
        byte* ev = stackalloc byte[16];
        *(uint*)ev = events;
        Unsafe.WriteUnaligned(ev + DataOffset, id);
        return epoll_ctl(_epoll, EpollCtlAdd, fd, ev) == 0;
    }

    /// <summary>Watches <paramref name="fd"/> (non-blocking) until the returned object is disposed.</summary>
    public SocketReadiness Register(int fd)
    {
        long id = Interlocked.Increment(ref _nextId);
        var readiness = new SocketReadiness(this, fd, id);
        _registered[id] = readiness;
        if (!Add(fd, EpollIn | EpollOut | EpollRdHup | EpollEt, id))
        {
            _registered.TryRemove(id, out _);
            throw new TlsTransportException($"epoll_ctl(ADD) failed: errno {Marshal.GetLastPInvokeError()}");
        }
        return readiness;
    }

    internal void Unregister(SocketReadiness readiness)
    {
        // After Dispose the epoll fd is closed and its number may belong to something else by now.
        if (_registered.TryRemove(readiness.Id, out _) && Volatile.Read(ref _disposed) == 0)
            epoll_ctl(_epoll, EpollCtlDel, readiness.Fd, null);
    }

    void Run()
    {
        byte* events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * EventSize));
        try
        {
            Wait(events);
        }
        finally
        {
            NativeMemory.Free(events);
            close(_wake);
            close(_epoll);
        }
    }

    void Wait(byte* events)
    {
        while (true)
        {
            int n = epoll_wait(_epoll, events, MaxEvents, -1);
            if (n < 0)
            {
                if (Marshal.GetLastPInvokeError() == EIntr)
                    continue;
                return;
            }
            for (int i = 0; i < n; i++)
            {
                byte* ev = events + i * EventSize;
                uint flags = *(uint*)ev;
                long id = Unsafe.ReadUnaligned<long>(ev + DataOffset);
                if (id == WakeId)
                    return;   // disposed
                if (!_registered.TryGetValue(id, out var readiness))
                    continue;
                if ((flags & (EpollIn | EpollRdHup | EpollHup | EpollErr)) != 0)
                    readiness.Readable.Set();
                if ((flags & (EpollOut | EpollHup | EpollErr)) != 0)
                    readiness.Writable.Set();
            }
        }
    }

    /// <summary>Stops the thread (it closes the epoll set itself, so no wait races the close).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        ulong one = 1;
        write(_wake, &one, sizeof(ulong));
        _thread.Join(TimeSpan.FromSeconds(5));
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_ctl(int epfd, int op, int fd, byte* ev);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int eventfd(uint initial, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, void* buffer, nuint count);

    [LibraryImport("libc")]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_wait(int epfd, byte* events, int maxEvents, int timeout);
}

/// <summary>A registered socket's two readiness signals.</summary>
internal sealed class SocketReadiness(ReadinessReactor reactor, int fd, long id) : IDisposable
{
    public int Fd { get; } = fd;
    public long Id { get; } = id;
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

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Tabula.Linux.Interop;

namespace Tabula.Linux;

/// <summary>epoll event bits (include/uapi/linux/eventpoll.h).</summary>
[Flags]
public enum EpollEvents : uint
{
    /// <summary>None.</summary>
    None = 0,
    /// <summary>EPOLLIN: readable.</summary>
    In = 0x001,
    /// <summary>EPOLLOUT: writable.</summary>
    Out = 0x004,
    /// <summary>EPOLLERR: an error is pending (always reported).</summary>
    Error = 0x008,
    /// <summary>EPOLLHUP: hang-up (always reported).</summary>
    HangUp = 0x010,
    /// <summary>EPOLLRDHUP: the peer shut down its writing side.</summary>
    ReadHangUp = 0x2000,
    /// <summary>EPOLLET: edge-triggered.</summary>
    EdgeTriggered = 1u << 31,
}

/// <summary>One ready descriptor from <see cref="Epoll.Wait"/>: what happened and the data it was added with.</summary>
public readonly record struct EpollEvent(EpollEvents Events, ulong Data);

/// <summary>
/// An epoll set (epoll(7)) that owns its descriptor. Watched descriptors are passed as SafeHandles and only borrowed
/// for the call. One thread waits; adding and removing from other threads is safe, as the kernel allows.
/// </summary>
public sealed class Epoll : IDisposable
{
    const int CtlAdd = 1, CtlDel = 2;
    const int Cloexec = 0x80000;
    /// <summary>Most events one <see cref="Wait"/> returns (its native buffer is on the stack).</summary>
    public const int MaxEventsPerWait = 256;

    // struct epoll_event is packed on x86-64 (12 bytes: u32 events, u64 data), naturally aligned elsewhere (16 bytes).
    static readonly int EventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    static readonly int DataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    readonly SafeFdHandle handle;

    Epoll(SafeFdHandle handle) => this.handle = handle;

    /// <summary>epoll_create1(EPOLL_CLOEXEC).</summary>
    public static Epoll Create()
    {
        SafeFdHandle handle = Libc.EpollCreate1(Cloexec);
        if (handle.IsInvalid)
        {
            var error = LinuxException.FromLastError("epoll_create1(EPOLL_CLOEXEC)");
            handle.Dispose();
            throw error;
        }
        return new Epoll(handle);
    }

    /// <summary>EPOLL_CTL_ADD: watch <paramref name="descriptor"/> for <paramref name="events"/>; <paramref name="data"/> comes back with each event.</summary>
    public unsafe void Add(SafeHandle descriptor, EpollEvents events, ulong data)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        byte* ev = stackalloc byte[16];
        *(uint*)ev = (uint)events;
        Unsafe.WriteUnaligned(ev + DataOffset, data);
        bool added = false;
        try
        {
            descriptor.DangerousAddRef(ref added);
            int fd = (int)descriptor.DangerousGetHandle();
            if (Libc.EpollCtl(handle, CtlAdd, fd, ev) != 0)
                LinuxException.ThrowLastError($"epoll_ctl(EPOLL_CTL_ADD, fd={fd}, events=0x{(uint)events:x})");
        }
        finally
        {
            if (added)
                descriptor.DangerousRelease();
        }
    }

    /// <summary>
    /// EPOLL_CTL_DEL. False when <paramref name="descriptor"/> is already closed (closing its last reference
    /// removed it from the set) or was not in it.
    /// </summary>
    public unsafe bool TryRemove(SafeHandle descriptor)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        if (descriptor.IsClosed || handle.IsClosed)
            return false;
        bool added = false;
        try
        {
            descriptor.DangerousAddRef(ref added);
            return Libc.EpollCtl(handle, CtlDel, (int)descriptor.DangerousGetHandle(), null) == 0;
        }
        catch (ObjectDisposedException)
        {
            return false;   // closed between the check and the add-ref
        }
        finally
        {
            if (added)
                descriptor.DangerousRelease();
        }
    }

    /// <summary>
    /// epoll_wait: fills <paramref name="events"/> (at most <see cref="MaxEventsPerWait"/>) and returns how many are
    /// ready, 0 on timeout. <paramref name="timeoutMilliseconds"/> -1 waits without limit. A signal (EINTR) retries.
    /// </summary>
    public unsafe int Wait(Span<EpollEvent> events, int timeoutMilliseconds)
    {
        int max = Math.Min(events.Length, MaxEventsPerWait);
        ArgumentOutOfRangeException.ThrowIfZero(max, nameof(events));
        byte* native = stackalloc byte[MaxEventsPerWait * 16];
        int n;
        do n = Libc.EpollWait(handle, native, max, timeoutMilliseconds);
        while (n < 0 && Marshal.GetLastPInvokeError() == (int)Errno.EINTR);
        if (n < 0)
            LinuxException.ThrowLastError($"epoll_wait(fd={handle.Fd}, max={max}, timeout={timeoutMilliseconds})");
        for (int i = 0; i < n; i++)
        {
            byte* ev = native + i * EventSize;
            events[i] = new EpollEvent((EpollEvents)(*(uint*)ev), Unsafe.ReadUnaligned<ulong>(ev + DataOffset));
        }
        return n;
    }

    /// <inheritdoc />
    public void Dispose() => handle.Dispose();
}

using Tabula.Linux.Interop;

namespace Tabula.Linux;

/// <summary>A non-blocking eventfd(2) counter that owns its descriptor: one thread signals, another sees it readable (e.g. in an <see cref="Epoll"/> set).</summary>
public sealed class EventFd : IDisposable
{
    const int Cloexec = 0x80000, NonBlock = 0x800;

    EventFd(SafeFdHandle handle) => Handle = handle;

    /// <summary>The descriptor, to watch in an epoll set.</summary>
    public SafeFdHandle Handle { get; }

    /// <summary>eventfd(0, EFD_CLOEXEC|EFD_NONBLOCK).</summary>
    public static EventFd Create()
    {
        SafeFdHandle handle = Libc.EventFd(0, Cloexec | NonBlock);
        if (handle.IsInvalid)
        {
            var error = LinuxException.FromLastError("eventfd(0, EFD_CLOEXEC|EFD_NONBLOCK)");
            handle.Dispose();
            throw error;
        }
        return new EventFd(handle);
    }

    /// <summary>Adds 1 to the counter, making the descriptor readable. EAGAIN (the counter is full) also leaves it readable, so it is not an error.</summary>
    public unsafe void Signal()
    {
        ulong one = 1;
        if (Libc.Write(Handle, &one, sizeof(ulong)) != sizeof(ulong) && System.Runtime.InteropServices.Marshal.GetLastPInvokeError() != (int)Errno.EAGAIN)
            LinuxException.ThrowLastError($"write(eventfd={Handle.Fd}, 1)");
    }

    /// <inheritdoc />
    public void Dispose() => Handle.Dispose();
}

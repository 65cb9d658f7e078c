using System.Runtime.InteropServices;

namespace Tabula.Linux.Interop;

internal static partial class Libc
{
    [LibraryImport(Name, EntryPoint = "epoll_create1", SetLastError = true)]
    internal static partial SafeFdHandle EpollCreate1(int flags);

    [LibraryImport(Name, EntryPoint = "epoll_ctl", SetLastError = true)]
    internal static unsafe partial int EpollCtl(SafeFdHandle epoll, int operation, int fd, void* ev);

    [LibraryImport(Name, EntryPoint = "epoll_wait", SetLastError = true)]
    internal static unsafe partial int EpollWait(SafeFdHandle epoll, void* events, int maxEvents, int timeout);
}

using System.Runtime.InteropServices;

namespace Tabula.Linux.Interop;

internal static partial class Libc
{
    [LibraryImport(Name, EntryPoint = "socket", SetLastError = true)]
    internal static partial SafeFdHandle Socket(int domain, int type, int protocol);

    [LibraryImport(Name, EntryPoint = "bind", SetLastError = true)]
    internal static unsafe partial int Bind(SafeFdHandle socket, void* address, uint addressLength);

    [LibraryImport(Name, EntryPoint = "setsockopt", SetLastError = true)]
    internal static unsafe partial int SetSockOpt(SafeFdHandle socket, int level, int name, void* value, uint valueLength);

    [LibraryImport(Name, EntryPoint = "send", SetLastError = true)]
    internal static unsafe partial nint Send(SafeFdHandle socket, byte* buffer, nuint length, int flags);

    [LibraryImport(Name, EntryPoint = "recv", SetLastError = true)]
    internal static unsafe partial nint Recv(SafeFdHandle socket, byte* buffer, nuint length, int flags);
}

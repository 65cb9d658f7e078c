using System.Runtime.InteropServices;

namespace Tabula.Linux.Interop;

internal static partial class Libc
{
    [LibraryImport(Name, EntryPoint = "eventfd", SetLastError = true)]
    internal static partial SafeFdHandle EventFd(uint initial, int flags);

    [LibraryImport(Name, EntryPoint = "write", SetLastError = true)]
    internal static unsafe partial nint Write(SafeFdHandle fd, void* buffer, nuint count);
}

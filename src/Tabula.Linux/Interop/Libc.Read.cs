using System.Runtime.InteropServices;

namespace Tabula.Linux.Interop;

internal static partial class Libc
{
    [LibraryImport(Name, EntryPoint = "read", SetLastError = true)]
    internal static unsafe partial nint Read(SafeFdHandle fd, void* buffer, nuint count);
}

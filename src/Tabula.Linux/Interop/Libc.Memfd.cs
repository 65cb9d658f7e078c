using System.Runtime.InteropServices;

namespace Tabula.Linux.Interop;

internal static partial class Libc
{
    [LibraryImport(Name, EntryPoint = "memfd_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    // Returns the C int, not a SafeFileHandle: marshalled as a pointer-sized handle, -1 would read as 0xFFFFFFFF.
    internal static partial int MemfdCreate(string name, uint flags);
}

using System.Runtime.InteropServices;

namespace Tabula.Linux.Interop;

internal static partial class Libc
{
    [LibraryImport(Name, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial SafeFdHandle Open(string path, int flags);

    [LibraryImport(Name, EntryPoint = "fsync", SetLastError = true)]
    internal static partial int FSync(SafeFdHandle fd);
}

using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Tabula.Linux.Interop;

internal static partial class Libc
{
    [LibraryImport(Name, EntryPoint = "memfd_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial SafeFileHandle MemfdCreate(string name, uint flags);
}

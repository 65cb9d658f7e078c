using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Tabula.Linux.Interop;

internal static partial class Libc
{
    [LibraryImport(Name, EntryPoint = "setns", SetLastError = true)]
    internal static partial int Setns(SafeFileHandle fd, int namespaceType);
}

using System.Runtime.InteropServices;

namespace Tabula.Linux.Interop;

internal static partial class Libc
{
    /// <summary>glibc's reboot(int): fills in LINUX_REBOOT_MAGIC1/2 itself.</summary>
    [LibraryImport(Name, EntryPoint = "reboot", SetLastError = true)]
    internal static partial int Reboot(int command);

    [LibraryImport(Name, EntryPoint = "sync")]
    internal static partial void Sync();
}

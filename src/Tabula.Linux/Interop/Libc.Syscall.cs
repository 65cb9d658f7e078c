using System.Runtime.InteropServices;

namespace Tabula.Linux.Interop;

internal static partial class Libc
{
    // glibc's syscall(2) is variadic; on x86_64 and arm64 it only moves integer registers, so calling it
    // with a fixed list of long arguments is safe. Used for calls glibc 2.36 has no wrapper for
    // (finit_module, kexec_file_load).
    [LibraryImport(Name, EntryPoint = "syscall", SetLastError = true)]
    internal static partial long Syscall(long number, nint arg1, nint arg2, nint arg3);

    [LibraryImport(Name, EntryPoint = "syscall", SetLastError = true)]
    internal static partial long Syscall(long number, nint arg1, nint arg2, nint arg3, nint arg4, nint arg5);
}

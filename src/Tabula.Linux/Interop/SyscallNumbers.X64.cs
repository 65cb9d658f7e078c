namespace Tabula.Linux.Interop;

/// <summary>x86_64 numbers, from torvalds/linux arch/x86/entry/syscalls/syscall_64.tbl.</summary>
internal static class SyscallNumbersX64
{
    internal const long FinitModule = 313;
    internal const long KexecLoad = 246;
    internal const long KexecFileLoad = 320;
}

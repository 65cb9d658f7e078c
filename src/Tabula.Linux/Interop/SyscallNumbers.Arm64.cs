namespace Tabula.Linux.Interop;

/// <summary>arm64 numbers, from torvalds/linux include/uapi/asm-generic/unistd.h.</summary>
internal static class SyscallNumbersArm64
{
    internal const long FinitModule = 273;
    internal const long KexecLoad = 104;
    internal const long KexecFileLoad = 294;
}

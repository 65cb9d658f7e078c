using System.Runtime.InteropServices;

namespace Tabula.Linux.Interop;

/// <summary>System call numbers for the running architecture (those without a glibc wrapper).</summary>
internal static class SyscallNumbers
{
    internal static long FinitModule => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => SyscallNumbersX64.FinitModule,
        Architecture.Arm64 => SyscallNumbersArm64.FinitModule,
        var other => throw new PlatformNotSupportedException($"finit_module: no system call number known for {other}"),
    };

    internal static long KexecFileLoad => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => SyscallNumbersX64.KexecFileLoad,
        Architecture.Arm64 => SyscallNumbersArm64.KexecFileLoad,
        var other => throw new PlatformNotSupportedException($"kexec_file_load: no system call number known for {other}"),
    };

    internal static long KexecLoad => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => SyscallNumbersX64.KexecLoad,
        Architecture.Arm64 => SyscallNumbersArm64.KexecLoad,
        var other => throw new PlatformNotSupportedException($"kexec_load: no system call number known for {other}"),
    };
}

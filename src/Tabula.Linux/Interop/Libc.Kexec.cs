namespace Tabula.Linux.Interop;

internal static partial class Libc
{
    internal static unsafe int KexecFileLoad(int kernelFd, int initrdFd, nuint commandLineLength, byte* commandLine, nuint flags) =>
        (int)Syscall(SyscallNumbers.KexecFileLoad, kernelFd, initrdFd, (nint)commandLineLength, (nint)commandLine, (nint)flags);

    internal static unsafe int KexecLoad(ulong entry, nuint segmentCount, void* segments, nuint flags) =>
        (int)Syscall(SyscallNumbers.KexecLoad, (nint)entry, (nint)segmentCount, (nint)segments, (nint)flags, 0);
}

namespace Tabula.Linux.Interop;

internal static partial class Libc
{
    internal static unsafe int KexecFileLoad(int kernelFd, int initrdFd, nuint commandLineLength, byte* commandLine, nuint flags) =>
        (int)Syscall(SyscallNumbers.KexecFileLoad, kernelFd, initrdFd, (nint)commandLineLength, (nint)commandLine, (nint)flags);
}

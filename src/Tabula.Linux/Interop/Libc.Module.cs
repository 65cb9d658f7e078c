namespace Tabula.Linux.Interop;

internal static partial class Libc
{
    internal static unsafe int FinitModule(int fd, byte* parameters, int flags) =>
        (int)Syscall(SyscallNumbers.FinitModule, fd, (nint)parameters, flags);
}

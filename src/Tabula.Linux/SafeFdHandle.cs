using Microsoft.Win32.SafeHandles;
using Tabula.Linux.Interop;

namespace Tabula.Linux;

/// <summary>An owned file descriptor that is not a regular file (sockets, netlink).</summary>
/// <remarks>fd 0 is a real descriptor in an initramfs started without a console, so only -1 is invalid.</remarks>
public sealed class SafeFdHandle() : SafeHandleMinusOneIsInvalid(ownsHandle: true)
{
    /// <summary>The raw descriptor number, for error messages.</summary>
    public int Fd => (int)handle;

    /// <summary>
    /// The imports that return this handle return a C int: a failed call leaves -1 in the low 32 bits of the
    /// register and zeroes the upper half (0x00000000FFFFFFFF), so only the low half is compared.
    /// </summary>
    public override bool IsInvalid => (int)handle == -1;

    /// <inheritdoc />
    protected override bool ReleaseHandle() => Libc.Close((int)handle) == 0;
}

using Microsoft.Win32.SafeHandles;
using Tabula.Linux.Interop;

namespace Tabula.Linux;

/// <summary>An owned file descriptor that is not a regular file (sockets, netlink).</summary>
/// <remarks>fd 0 is a real descriptor in an initramfs started without a console, so only -1 is invalid.</remarks>
public sealed class SafeFdHandle() : SafeHandleMinusOneIsInvalid(ownsHandle: true)
{
    /// <summary>The raw descriptor number, for error messages.</summary>
    public int Fd => (int)handle;

    /// <inheritdoc />
    protected override bool ReleaseHandle() => Libc.Close((int)handle) == 0;
}

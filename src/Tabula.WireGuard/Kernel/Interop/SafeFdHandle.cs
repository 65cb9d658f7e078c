using Microsoft.Win32.SafeHandles;

namespace Tabula.WireGuard.Kernel.Interop;

/// <summary>A file descriptor closed on dispose. fd 0 is a real descriptor in an initramfs started without a console, so only -1 is invalid.</summary>
internal sealed class SafeFdHandle() : SafeHandleMinusOneIsInvalid(ownsHandle: true)
{
    protected override bool ReleaseHandle() => Libc.Close((int)handle) == 0;
}

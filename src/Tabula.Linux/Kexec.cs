using System.Text;
using Microsoft.Win32.SafeHandles;
using Tabula.Linux.Interop;

namespace Tabula.Linux;

/// <summary>kexec_file_load(2) flags (include/uapi/linux/kexec.h).</summary>
[Flags]
public enum KexecFileFlags : uint
{
    /// <summary>Load a kernel to run with <see cref="Reboot.Kexec"/>.</summary>
    None = 0,
    /// <summary>KEXEC_FILE_UNLOAD.</summary>
    Unload = 0x1,
    /// <summary>KEXEC_FILE_ON_CRASH: a kdump kernel.</summary>
    OnCrash = 0x2,
    /// <summary>KEXEC_FILE_NO_INITRAMFS: set by <see cref="Kexec.LoadFile"/> when no initramfs is given.</summary>
    NoInitramfs = 0x4,
}

/// <summary>One piece of memory for kexec_load(2): <paramref name="Buffer"/> is copied to physical address
/// <paramref name="Address"/> (page-aligned) and the rest of <paramref name="MemorySize"/> (a page multiple) is zeroed.</summary>
public readonly record struct KexecSegment(ReadOnlyMemory<byte> Buffer, ulong Address, ulong MemorySize);

/// <summary>Stages a kernel for <see cref="Reboot.Kexec"/> (u-root pkg/boot/kexec FileLoad and Load).</summary>
public static class Kexec
{
    /// <summary>
    /// kexec_file_load(2). Both files must be regular files with no writable descriptor open (tmpfs, rootfs or a
    /// memfd reopened read-only); the kernel must be uncompressed or a bzImage. Needs CAP_SYS_BOOT.
    /// </summary>
    /// <param name="kernel">The kernel image.</param>
    /// <param name="initramfs">The initramfs, or null to pass <see cref="KexecFileFlags.NoInitramfs"/>.</param>
    /// <param name="commandLine">Passed exactly; a NUL is appended as the kernel requires.</param>
    /// <param name="flags">Extra flags; <see cref="KexecFileFlags.NoInitramfs"/> is derived.</param>
    public static unsafe void LoadFile(SafeFileHandle kernel, SafeFileHandle? initramfs, string commandLine,
        KexecFileFlags flags = KexecFileFlags.None)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentNullException.ThrowIfNull(commandLine);
        int length = Encoding.UTF8.GetByteCount(commandLine);
        if (length + 1 > Limits.MaxKernelCommandLineBytes)
            throw new ArgumentException($"the kernel command line exceeds {Limits.MaxKernelCommandLineBytes} bytes", nameof(commandLine));
        if (initramfs is null)
            flags |= KexecFileFlags.NoInitramfs;
        byte[] text = new byte[length + 1];
        Encoding.UTF8.GetBytes(commandLine, text);

        bool kernelAdded = false, initramfsAdded = false;
        try
        {
            kernel.DangerousAddRef(ref kernelAdded);
            initramfs?.DangerousAddRef(ref initramfsAdded);
            int kernelFd = (int)kernel.DangerousGetHandle();
            int initramfsFd = initramfs is null ? -1 : (int)initramfs.DangerousGetHandle();
            fixed (byte* p = text)
            {
                if (Libc.KexecFileLoad(kernelFd, initramfsFd, (nuint)text.Length, p, (nuint)flags) != 0)
                    LinuxException.ThrowLastError(
                        $"kexec_file_load(kernel=fd {kernelFd}, initrd={(initramfs is null ? "none" : $"fd {initramfsFd}")}, cmdline_len={text.Length}, flags=0x{(uint)flags:x})");
            }
        }
        finally
        {
            if (kernelAdded)
                kernel.DangerousRelease();
            if (initramfsAdded)
                initramfs!.DangerousRelease();
        }
    }

    /// <summary>Most segments kexec_load accepts (KEXEC_SEGMENT_MAX).</summary>
    public const int MaxSegments = 16;

    /// <summary>
    /// kexec_load(2): the caller lays out memory itself and names the entry point; the kernel only copies the segments
    /// and jumps there with <see cref="Reboot.Kexec"/> (no purgatory of its own). Needs CAP_SYS_BOOT; refused with EPERM
    /// under lockdown (Secure Boot), where only <see cref="LoadFile"/> is allowed.
    /// </summary>
    public static unsafe void LoadSegments(ulong entry, IReadOnlyList<KexecSegment> segments)
    {
        ArgumentNullException.ThrowIfNull(segments);
        if (segments.Count is 0 or > MaxSegments)
            throw new ArgumentException($"kexec_load takes 1 to {MaxSegments} segments, got {segments.Count}", nameof(segments));
        const ulong page = 4096;
        var handles = new System.Buffers.MemoryHandle[segments.Count];
        var native = new NativeSegment[segments.Count];
        try
        {
            for (int i = 0; i < segments.Count; i++)
            {
                var segment = segments[i];
                if (segment.Address % page != 0 || segment.MemorySize % page != 0 || (ulong)segment.Buffer.Length > segment.MemorySize)
                    throw new ArgumentException($"segment {i}: address 0x{segment.Address:x} and size 0x{segment.MemorySize:x} must be page-aligned and hold {segment.Buffer.Length} bytes", nameof(segments));
                handles[i] = segment.Buffer.Pin();
                native[i] = new NativeSegment((nint)handles[i].Pointer, (nuint)segment.Buffer.Length, (nint)segment.Address, (nuint)segment.MemorySize);
            }
            fixed (NativeSegment* p = native)
            {
                if (Libc.KexecLoad(entry, (nuint)native.Length, p, 0) != 0)
                    LinuxException.ThrowLastError($"kexec_load(entry=0x{entry:x}, segments={native.Length})");
            }
        }
        finally
        {
            foreach (var handle in handles)
                handle.Dispose();
        }
    }

    /// <summary>struct kexec_segment (include/uapi/linux/kexec.h).</summary>
    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    readonly record struct NativeSegment(nint Buffer, nuint BufferSize, nint Memory, nuint MemorySize);

    /// <summary>Drops a staged kernel (KEXEC_FILE_UNLOAD).</summary>
    public static unsafe void Unload()
    {
        if (Libc.KexecFileLoad(-1, -1, 0, null, (nuint)KexecFileFlags.Unload) != 0)
            LinuxException.ThrowLastError("kexec_file_load(kernel=none, initrd=none, cmdline_len=0, flags=0x1)");
    }
}

using Microsoft.Win32.SafeHandles;
using Tabula.Linux.Interop;

namespace Tabula.Linux;

/// <summary>memfd_create(2) flags (include/uapi/linux/memfd.h).</summary>
[Flags]
public enum MemoryFileFlags : uint
{
    /// <summary>No flags: the descriptor survives exec.</summary>
    None = 0,
    /// <summary>MFD_CLOEXEC.</summary>
    CloseOnExec = 1,
    /// <summary>MFD_ALLOW_SEALING.</summary>
    AllowSealing = 2,
}

/// <summary>Anonymous RAM-backed regular files: what kexec_file_load and finit_module accept as input.</summary>
public static class MemoryFile
{
    /// <summary>memfd_create(2). The handle is read-write; write the content, then <see cref="ReopenReadOnly"/>.</summary>
    public static SafeFileHandle Create(string name, MemoryFileFlags flags = MemoryFileFlags.CloseOnExec)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        int fd = Libc.MemfdCreate(name, (uint)flags);
        if (fd < 0)
            LinuxException.ThrowLastError($"memfd_create(name=\"{name}\", flags=0x{(uint)flags:x})");
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>
    /// Opens the same file again read-only through /proc/self/fd (needs /proc mounted). kexec_file_load refuses
    /// a file that still has a writable descriptor open (ETXTBSY), so close the writable one afterwards.
    /// </summary>
    public static SafeFileHandle ReopenReadOnly(SafeFileHandle writable)
    {
        ArgumentNullException.ThrowIfNull(writable);
        return File.OpenHandle($"/proc/self/fd/{writable.DangerousGetHandle()}", FileMode.Open, FileAccess.Read);
    }
}

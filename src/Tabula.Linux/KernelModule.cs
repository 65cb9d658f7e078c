using System.Text;
using Microsoft.Win32.SafeHandles;
using Tabula.Linux.Interop;

namespace Tabula.Linux;

/// <summary>finit_module(2) flags (include/uapi/linux/module.h).</summary>
[Flags]
public enum ModuleLoadFlags
{
    /// <summary>Check symbol versions and vermagic, expect an uncompressed ELF object.</summary>
    None = 0,
    /// <summary>MODULE_INIT_IGNORE_MODVERSIONS.</summary>
    IgnoreModuleVersions = 1,
    /// <summary>MODULE_INIT_IGNORE_VERMAGIC.</summary>
    IgnoreVersionMagic = 2,
    /// <summary>
    /// MODULE_INIT_COMPRESSED_FILE: the kernel decompresses the file. Needs CONFIG_MODULE_DECOMPRESS and the
    /// compression the kernel was built for; Debian 12's 6.1 kernels have neither (they ship plain .ko).
    /// </summary>
    CompressedFile = 4,
}

/// <summary>Loads kernel modules from open files.</summary>
public static class KernelModule
{
    /// <summary>
    /// finit_module(2). A module that is already loaded throws with <see cref="Errno.EEXIST"/>; the caller
    /// decides whether that is success.
    /// </summary>
    public static unsafe void Load(SafeFileHandle module, string parameters = "", ModuleLoadFlags flags = ModuleLoadFlags.None)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(parameters);
        int length = Encoding.UTF8.GetByteCount(parameters);
        if (length + 1 > Limits.MaxModuleParameterBytes)
            throw new ArgumentException($"module parameters exceed {Limits.MaxModuleParameterBytes} bytes", nameof(parameters));
        Span<byte> text = stackalloc byte[length + 1];
        Encoding.UTF8.GetBytes(parameters, text);
        text[length] = 0;
        bool added = false;
        try
        {
            module.DangerousAddRef(ref added);
            int fd = (int)module.DangerousGetHandle();
            fixed (byte* p = text)
            {
                if (Libc.FinitModule(fd, p, (int)flags) != 0)
                    LinuxException.ThrowLastError($"finit_module(fd={fd}, params=\"{parameters}\", flags=0x{(int)flags:x})");
            }
        }
        finally
        {
            if (added)
                module.DangerousRelease();
        }
    }
}

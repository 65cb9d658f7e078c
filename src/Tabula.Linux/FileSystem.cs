using Tabula.Linux.Interop;

namespace Tabula.Linux;

/// <summary>File system calls the BCL does not expose with errno intact.</summary>
public static class FileSystem
{
    /// <summary>mkdir(2). An existing path throws with <see cref="Errno.EEXIST"/>; parents are not created.</summary>
    public static void MakeDirectory(string path, UnixFileMode mode)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Libc.Mkdir(path, (uint)mode) != 0)
            LinuxException.ThrowLastError($"mkdir(path=\"{path}\", mode=0{Convert.ToString((int)mode, 8)})");
    }
}

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

    /// <summary>
    /// open(O_DIRECTORY) and fsync(2) of a directory, so that a rename into it survives power loss: .NET flushes
    /// files (<see cref="FileStream.Flush(bool)"/>) but not directories.
    /// </summary>
    public static void SyncDirectory(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        const int ReadOnly = 0, Directory = 0x10000, Cloexec = 0x80000;
        using SafeFdHandle directory = Libc.Open(path, ReadOnly | Directory | Cloexec);
        if (directory.IsInvalid)
            LinuxException.ThrowLastError($"open(path=\"{path}\", O_RDONLY|O_DIRECTORY|O_CLOEXEC)");
        if (Libc.FSync(directory) != 0)
            LinuxException.ThrowLastError($"fsync(fd={directory.Fd}, \"{path}\")");
    }

    /// <summary>
    /// link(2): <paramref name="created"/> becomes a second name for <paramref name="existing"/>'s bytes. False when
    /// the file system refuses (another device, no hard links, a name taken), so the caller can copy instead.
    /// </summary>
    public static bool TryCreateHardLink(string existing, string created)
    {
        ArgumentException.ThrowIfNullOrEmpty(existing);
        ArgumentException.ThrowIfNullOrEmpty(created);
        return Libc.Link(existing, created) == 0;
    }
}

using Tabula.Linux.Interop;

namespace Tabula.Linux;

/// <summary>A mounted file system, returned by <see cref="Mount"/> and later <see cref="Unmount"/>ed (u-root pkg/mount).</summary>
/// <remarks>Not disposable on purpose: PID 1 keeps /proc, /sys and /dev for its whole life.</remarks>
public sealed record MountPoint(string? Source, string Target, string? FileSystemType, MountFlags Flags, string? Data)
{
    /// <summary>mount(2). Throws <see cref="LinuxException"/> with the call spelled out (EBUSY when already mounted).</summary>
    public static MountPoint Mount(string? source, string target, string? fileSystemType,
        MountFlags flags = MountFlags.None, string? data = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(target);
        if (Libc.Mount(source, target, fileSystemType, (ulong)flags, data) != 0)
            LinuxException.ThrowLastError(
                $"mount(source={Quote(source)}, target=\"{target}\", type={Quote(fileSystemType)}, flags=0x{(ulong)flags:x}, data={Quote(data)})");
        return new MountPoint(source, target, fileSystemType, flags, data);
    }

    /// <summary>umount2(2) on <see cref="Target"/>.</summary>
    public void Unmount(UnmountFlags flags = UnmountFlags.None)
    {
        if (Libc.Umount2(Target, (int)flags) != 0)
            LinuxException.ThrowLastError($"umount2(target=\"{Target}\", flags=0x{(int)flags:x})");
    }

    static string Quote(string? value) => value is null ? "NULL" : $"\"{value}\"";
}

using Tabula.Linux;

namespace Tabula.Boot.Seams;

/// <summary>The pseudo file systems PID 1 needs.</summary>
internal interface IMounts
{
    /// <summary>Mounts them; returns what was mounted, for the console.</summary>
    string MountEssentials();
}

/// <summary>
/// u-root's order: devtmpfs on /dev first (for /dev/kmsg and /dev/urandom), proc, sysfs, a tmpfs on /run, then
/// efivarfs where the firmware is UEFI (best effort: absent on BIOS machines and in QEMU without OVMF).
/// </summary>
internal sealed class LinuxMounts : IMounts
{
    const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    public string MountEssentials()
    {
        var mounted = new List<string>();
        foreach (var (source, target, type, flags) in new (string, string, string, MountFlags)[]
        {
            ("devtmpfs", "/dev", "devtmpfs", MountFlags.NoSetUid),
            ("proc", "/proc", "proc", MountFlags.NoSetUid | MountFlags.NoDevices | MountFlags.NoExecute),
            ("sysfs", "/sys", "sysfs", MountFlags.NoSetUid | MountFlags.NoDevices | MountFlags.NoExecute),
            ("tmpfs", "/run", "tmpfs", MountFlags.NoSetUid | MountFlags.NoDevices),
        })
        {
            MakeDirectory(target);
            MountPoint.Mount(source, target, type, flags);
            mounted.Add(target);
        }
        if (Directory.Exists("/sys/firmware/efi"))
        {
            try
            {
                MountPoint.Mount("efivarfs", Linux.Efi.EfiVariables.DefaultDirectory, "efivarfs",
                    MountFlags.NoSetUid | MountFlags.NoDevices | MountFlags.NoExecute);
                mounted.Add("efivarfs");
            }
            catch (LinuxException) { /* no efivarfs in this kernel: the host configuration must then be a file */ }
        }
        return string.Join(',', mounted);
    }

    static void MakeDirectory(string path)
    {
        try { FileSystem.MakeDirectory(path, DirectoryMode); }
        catch (LinuxException e) when (e.Errno == Errno.EEXIST) { }
    }
}

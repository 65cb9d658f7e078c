using Tabula.Packaging;
using Tabula.Packaging.Cpio;

namespace Tabula.Images.Initramfs;

/// <summary>
/// What every Tabula initramfs starts with, whichever program is PID 1: /init, the device nodes a .NET PID 1 needs
/// before it mounts devtmpfs, and the empty mount points. Shared by the stboot image and the relay OS package.
/// </summary>
/// <remarks>
/// /dev/console (5:1) lets the kernel give init fds 0–2; /dev/null, /dev/random and /dev/urandom are there because
/// the .NET runtime opens /dev/urandom early (Guid.NewGuid) and, if that fails before devtmpfs is mounted, remembers
/// the failure for good (docs/boot.md, "Device nodes in the archive").
/// </remarks>
public static class InitramfsBase
{
    /// <summary>Mount points every image has: PID 1 mounts proc, sysfs and a tmpfs on /run; /etc holds its configuration.</summary>
    public static readonly IReadOnlyList<string> Directories = ["proc", "sys", "run", "etc"];

    /// <summary>
    /// A new archive holding <paramref name="init"/> as /init (0755), the device nodes and <see cref="Directories"/>.
    /// Refuses a missing /init binary.
    /// </summary>
    public static CpioArchive Create(string init)
    {
        ArgumentNullException.ThrowIfNull(init);
        if (!File.Exists(init))
            ImageException.Throw(ImageError.InputInvalid, $"/init binary {init} does not exist");
        var archive = new CpioArchive()
            .AddFileFrom(InitramfsLayout.Init, init, CpioArchive.ExecutableMode)
            .AddCharacterDevice("dev/console", 5, 1)
            .AddCharacterDevice("dev/null", 1, 3, (UnixFileMode)0x1B6)
            .AddCharacterDevice("dev/random", 1, 8, (UnixFileMode)0x1B6)
            .AddCharacterDevice("dev/urandom", 1, 9, (UnixFileMode)0x1B6);
        foreach (string directory in Directories)
            archive.AddDirectory(directory);
        return archive;
    }
}

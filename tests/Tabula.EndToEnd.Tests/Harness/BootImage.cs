using Tabula.Packaging.Cpio;
using Tabula.Images.Initramfs;
using Tabula.Images.KernelModules;

namespace Tabula.EndToEnd.Tests.Harness;

/// <summary>Builds test initramfs images with Tabula.Images: /init, /dev/console, and whatever a test adds.</summary>
internal static class BootImage
{
    /// <summary>
    /// An archive with <paramref name="init"/> as /init and the base every Tabula image has (<see cref="InitramfsBase"/>):
    /// the device nodes a .NET PID 1 needs before it mounts devtmpfs and the empty mount points. Without /dev/urandom
    /// the runtime's first Guid.NewGuid fails and it remembers that forever (HttpClient then fails in Activity's
    /// constructor) — measured in QEMU.
    /// </summary>
    internal static CpioArchive WithInit(string init) => InitramfsBase.Create(init);

    /// <summary>Adds the closure of <paramref name="modules"/> from the guest kernel's tree.</summary>
    internal static CpioArchive WithModules(this CpioArchive archive, string release, params string[] modules)
    {
        ModuleTree.Open(release).AddClosureTo(archive, modules);
        return archive;
    }

    /// <summary>Writes the archive gzip-compressed to out/e2e/images/<paramref name="name"/>.cpio.gz.</summary>
    internal static string Write(this CpioArchive archive, string name)
    {
        string path = RepositoryPaths.Out("images", name + ".cpio.gz");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var file = File.Create(path);
        archive.WriteGzipTo(file);
        return path;
    }
}

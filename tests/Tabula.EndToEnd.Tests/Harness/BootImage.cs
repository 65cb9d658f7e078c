using Tabula.Images.Cpio;
using Tabula.Images.KernelModules;

namespace Tabula.EndToEnd.Tests.Harness;

/// <summary>Builds test initramfs images with Tabula.Images: /init, /dev/console, and whatever a test adds.</summary>
internal static class BootImage
{
    /// <summary>
    /// An archive with <paramref name="init"/> as /init (0755) and the device nodes a .NET PID 1 needs before it
    /// mounts devtmpfs: /dev/console (the kernel opens it as fd 0-2 for init) and /dev/urandom, /dev/random and
    /// /dev/null. The runtime opens /dev/urandom for Guid.NewGuid and, when it is missing at first use, remembers
    /// that forever (HttpClient then fails in Activity's constructor) — measured in QEMU.
    /// </summary>
    internal static CpioArchive WithInit(string init) =>
        new CpioArchive()
            .AddFileFrom("init", init, CpioArchive.ExecutableMode)
            .AddCharacterDevice("dev/console", 5, 1)
            .AddCharacterDevice("dev/null", 1, 3, (UnixFileMode)0x1B6)
            .AddCharacterDevice("dev/random", 1, 8, (UnixFileMode)0x1B6)
            .AddCharacterDevice("dev/urandom", 1, 9, (UnixFileMode)0x1B6)
            .AddDirectory("proc").AddDirectory("sys").AddDirectory("run");

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

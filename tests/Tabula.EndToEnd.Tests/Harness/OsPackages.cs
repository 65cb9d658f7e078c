using System.Security.Cryptography;
using Tabula.Images.Stboot;
using Tabula.Testing;
using Tabula.Testing.Packages;

namespace Tabula.EndToEnd.Tests.Harness;

/// <summary>
/// The "OS" booted by stboot in these tests: the Debian guest kernel plus an initramfs whose /init is tabula-boot in
/// marker mode (prints the hand-over digest, powers off). Its archive is built once per run (about 13 MB) and signed
/// per test with fresh keys.
/// </summary>
public sealed class OsPackages(BootBinary boot)
{
    static OsPackages? shared;

    /// <summary>One instance per test run (the archive is built once).</summary>
    public static OsPackages For(BootBinary boot)
    {
        lock (typeof(OsPackages))
            return shared ??= new OsPackages(boot);
    }

    /// <summary>The signed command line of the OS: exactly what the marker must see in /proc/cmdline.</summary>
    public const string Cmdline = "console=ttyS0 panic=-1 quiet -- marker";

    readonly Lazy<byte[]> archive = new(() => Build(boot, File.ReadAllBytes(GuestKernel.Require().KernelPath)));

    static byte[] Build(BootBinary boot, byte[] kernel)
    {
        using var initramfs = new MemoryStream();
        BootImage.WithInit(boot.Path).WriteGzipTo(initramfs);
        return SignedPackages.Archive(kernel, initramfs.ToArray(), Cmdline, "vmlinuz", "initramfs.cpio.gz");
    }

    /// <summary>The same OS with another kernel (e.g. the guest kernel signed with a test's own Secure Boot key).</summary>
    public byte[] ArchiveWith(byte[] kernel) => Build(boot, kernel);

    public byte[] Archive => archive.Value;

    public string Sha256Hex => Convert.ToHexStringLower(SHA256.HashData(Archive));

    /// <summary>Builds an stboot image for this test into out/e2e/images/NAME.cpio.gz.</summary>
    public string StbootImage(string name, string trustPolicy, string? hostConfigJson, string[] modules, params string[] embedded)
    {
        string dir = RepositoryPaths.Out("images", name);
        Directory.CreateDirectory(dir);
        string? hostConfig = null;
        if (hostConfigJson is not null)
            File.WriteAllText(hostConfig = Path.Combine(dir, "host_configuration.json"), hostConfigJson);
        string path = RepositoryPaths.Out("images", name + ".cpio.gz");
        using var file = File.Create(path);
        Images.Stboot.StbootImage.Write(new StbootImageInputs(boot.Path, trustPolicy, hostConfig, GuestKernel.Require().Release, modules)
        {
            EmbeddedPackages = embedded,
        }, file);
        return path;
    }
}

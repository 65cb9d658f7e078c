using System.Diagnostics;
using System.Text;
using Tabula.Packaging;
using Tabula.Packaging.Cpio;
using Tabula.Images.KernelModules;
using Tabula.Testing;

namespace Tabula.Images.Tests;

public sealed class ModuleClosureTests
{
    // Debian 12 (6.1.0) lines for virtio_net and virtio_pci, with .ko.xz as later Debian kernels name them.
    const string ModulesDep = """
        kernel/drivers/virtio/virtio.ko.xz: kernel/drivers/virtio/virtio_ring.ko.xz
        kernel/drivers/virtio/virtio_ring.ko.xz:
        kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz:
        kernel/drivers/virtio/virtio_pci_legacy_dev.ko.xz:
        kernel/drivers/virtio/virtio_pci.ko.xz: kernel/drivers/virtio/virtio_pci_legacy_dev.ko.xz kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz kernel/drivers/virtio/virtio.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz
        kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz kernel/drivers/virtio/virtio.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz
        kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz
        kernel/net/core/failover.ko.xz:
        """;

    [Fact]
    public void Closure_of_virtio_net_loads_dependencies_first_each_once()
    {
        var deps = ModuleDependencies.Parse(new StringReader(ModulesDep));
        Assert.Equal(
        [
            "kernel/drivers/virtio/virtio_ring.ko.xz",
            "kernel/drivers/virtio/virtio.ko.xz",
            "kernel/net/core/failover.ko.xz",
            "kernel/drivers/net/net_failover.ko.xz",
            "kernel/drivers/net/virtio_net.ko.xz",
            "kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz",
            "kernel/drivers/virtio/virtio_pci_legacy_dev.ko.xz",
            "kernel/drivers/virtio/virtio_pci.ko.xz",
        ], deps.Closure(["virtio_net", "virtio-pci"]));
    }

    [Fact]
    public void Unknown_module_and_cycles_are_refused()
    {
        var deps = ModuleDependencies.Parse(new StringReader(ModulesDep));
        Assert.Equal(ImageError.ModuleNotFound, Assert.Throws<ImageException>(() => deps.Closure(["e1000"])).Reason);
        var cyclic = ModuleDependencies.Parse(new StringReader("a.ko: b.ko\nb.ko: a.ko\n"));
        Assert.Equal(ImageError.ModuleDependencyCycle, Assert.Throws<ImageException>(() => cyclic.Closure(["a"])).Reason);
        Assert.Equal(ImageError.ModulesDepMalformed,
            Assert.Throws<ImageException>(() => ModuleDependencies.Parse(new StringReader("no colon here\n"))).Reason);
    }

    [Theory, InlineData("kernel/a/virtio-net.ko.xz", "virtio_net"), InlineData("x/failover.ko", "failover"), InlineData("y/z.ko.zst", "z")]
    public void Module_names_drop_suffixes_and_read_dashes_as_underscores(string path, string name) =>
        Assert.Equal(name, ModuleDependencies.NameOf(path));

    [Fact]
    public void Xz_compressed_modules_are_stored_decompressed_with_a_load_order()
    {
        if (Prerequisites.FindOnPath("xz") is null)
        {
            Assert.False(Prerequisites.IsCi, "xz is missing (xz-utils)");
            return;
        }
        string root = Directory.CreateTempSubdirectory("tabula-modules").FullName;
        try
        {
            string release = Path.Combine(root, "9.9.9-test");
            Directory.CreateDirectory(Path.Combine(release, "kernel"));
            byte[] elf = [0x7F, (byte)'E', (byte)'L', (byte)'F', .. Encoding.ASCII.GetBytes("module body")];
            File.WriteAllBytes(Path.Combine(release, "kernel/a.ko"), elf);
            File.WriteAllBytes(Path.Combine(release, "kernel/b.ko"), elf);
            Run("xz", Path.Combine(release, "kernel/a.ko"));
            File.WriteAllText(Path.Combine(release, "modules.dep"), "kernel/a.ko.xz:\nkernel/b.ko: kernel/a.ko.xz\n");

            var tree = ModuleTree.Open("9.9.9-test", root);
            var archive = new CpioArchive();
            Assert.Equal(["/lib/modules/9.9.9-test/kernel/a.ko", "/lib/modules/9.9.9-test/kernel/b.ko"], tree.AddClosureTo(archive, ["b"]));
            var files = archive.Entries.ToDictionary(e => e.Path);
            Assert.Equal(elf, files["lib/modules/9.9.9-test/kernel/a.ko"].Data.ToArray());
            Assert.Equal("/lib/modules/9.9.9-test/kernel/a.ko\n/lib/modules/9.9.9-test/kernel/b.ko\n",
                Encoding.UTF8.GetString(files[InitramfsLayout.ModuleLoadOrder].Data.Span));
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [GuestKernelFact]
    public void Closure_of_virtio_net_from_the_installed_debian_kernel_starts_with_its_dependencies()
    {
        GuestKernel kernel = GuestKernel.Require();
        var tree = ModuleTree.Open(kernel.Release);
        var closure = tree.Dependencies.Closure(["virtio_net"]).Select(ModuleDependencies.NameOf).ToList();
        Assert.Equal("virtio_net", closure[^1]);
        foreach (string dependency in new[] { "failover", "net_failover", "virtio", "virtio_ring" })
            Assert.True(closure.IndexOf(dependency) is >= 0 and var i && i < closure.Count - 1, $"{dependency} in {string.Join(",", closure)}");
        Assert.True(closure.IndexOf("failover") < closure.IndexOf("net_failover"));
        Assert.True(closure.IndexOf("virtio_ring") < closure.IndexOf("virtio"));
        var archive = new CpioArchive();
        tree.AddClosureTo(archive, ["virtio_net", "virtio_pci"]);
        Assert.All(archive.Entries.Where(e => e.Path.EndsWith(".ko", StringComparison.Ordinal)), e => Assert.Equal(0x7F, e.Data.Span[0]));
    }

    static void Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file);
        foreach (var a in args) start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }
}

using System.Diagnostics;
using System.Text;
using Tabula.Images.KernelModules;
using Tabula.Machine.Modules;
using Tabula.Packaging.Cpio;
using Tabula.Testing;

namespace Tabula.Images.Tests;

/// <summary>
/// Which modules an image carries (the closure of what was asked for and its bus transports) and the index files
/// written beside them. The parsers themselves are the machine layer's (Tabula.Machine.Tests.ModuleIndexTests).
/// </summary>
public sealed class ModuleClosureTests : IDisposable
{
    readonly string root = Directory.CreateTempSubdirectory("tabula-modules").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    ModuleTree Tree(string dep, string alias)
    {
        string release = Path.Combine(root, "9.9.9-test");
        Directory.CreateDirectory(release);
        File.WriteAllText(Path.Combine(release, "modules.dep"), dep);
        File.WriteAllText(Path.Combine(release, "modules.alias"), alias);
        foreach (string path in dep.Split([' ', '\n', ':'], StringSplitOptions.RemoveEmptyEntries).Distinct())
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(release, path))!);
            File.WriteAllBytes(Path.Combine(release, path), [0x7F, (byte)'E', (byte)'L', (byte)'F']);
        }
        return ModuleTree.Open("9.9.9-test", root);
    }

    // The shape of Debian 12's virtio and USB corners: drivers on a bus all need its core; transports bind another bus.
    const string Dep = """
        k/virtio_ring.ko:
        k/virtio.ko: k/virtio_ring.ko
        k/virtio_pci.ko: k/virtio.ko k/virtio_ring.ko
        k/virtio_mmio.ko: k/virtio.ko k/virtio_ring.ko
        k/virtio_net.ko: k/virtio.ko k/virtio_ring.ko
        k/virtio_blk.ko: k/virtio.ko k/virtio_ring.ko
        k/virtio_mem.ko: k/virtio.ko k/virtio_ring.ko
        k/usbcore.ko:
        k/xhci_pci.ko: k/usbcore.ko
        k/r8152.ko: k/usbcore.ko
        k/usb_storage.ko: k/usbcore.ko
        k/e1000e.ko:
        k/udp_tunnel.ko:
        k/wireguard.ko: k/udp_tunnel.ko
        """;

    const string Alias = """
        alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
        alias acpi*:LNRO0005:* virtio_mmio
        alias virtio:d00000001v* virtio_net
        alias virtio:d00000002v* virtio_blk
        alias virtio:d00000018v* virtio_mem
        alias pci:v*d*sv*sd*bc0Csc03i30* xhci_pci
        alias usb:v0BDAp8152d*dc*dsc*dp*ic*isc*ip*in* r8152
        alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb_storage
        alias pci:v00008086d000010D3sv*sd*bc*sc*i* e1000e
        alias rtnl-link-wireguard wireguard
        """;

    [Fact]
    public void A_virtio_driver_brings_its_pci_and_mmio_transports_and_nothing_else()
    {
        var tree = Tree(Dep, Alias);
        Assert.Equal(["virtio_mmio", "virtio_pci"], tree.Transports(["virtio_net"]));
        Assert.Equal(["virtio_ring", "virtio", "virtio_net", "virtio_mmio", "virtio_pci"],
            tree.Select(["virtio_net"]).Select(ModuleDependencies.NameOf));
    }

    [Fact]
    public void A_usb_nic_brings_the_host_controller_a_pci_nic_and_wireguard_bring_nothing()
    {
        var tree = Tree(Dep, Alias);
        Assert.Equal(["xhci_pci"], tree.Transports(["r8152"]));
        Assert.Empty(tree.Transports(["e1000e"]));          // pci's drivers share no module: no core, no transport
        Assert.Empty(tree.Transports(["wireguard"]));       // no device alias at all
    }

    [Fact]
    public void The_image_gets_the_modules_uncompressed_with_their_own_dep_and_alias_files()
    {
        if (Prerequisites.FindOnPath("xz") is null)
        {
            Assert.False(Prerequisites.IsCi, "xz is missing (xz-utils)");
            return;
        }
        string release = Path.Combine(root, "9.9.9-test");
        Directory.CreateDirectory(Path.Combine(release, "kernel"));
        byte[] elf = [0x7F, (byte)'E', (byte)'L', (byte)'F', .. Encoding.ASCII.GetBytes("module body")];
        File.WriteAllBytes(Path.Combine(release, "kernel/a.ko"), elf);
        File.WriteAllBytes(Path.Combine(release, "kernel/b.ko"), elf);
        Run("xz", Path.Combine(release, "kernel/a.ko"));
        File.WriteAllText(Path.Combine(release, "modules.dep"), "kernel/a.ko.xz:\nkernel/b.ko: kernel/a.ko.xz\n");
        File.WriteAllText(Path.Combine(release, "modules.alias"), "alias pci:v00001234d* b\nalias pci:v00005678d* c\n");

        var tree = ModuleTree.Open("9.9.9-test", root);
        var archive = new CpioArchive();
        Assert.Equal(["/lib/modules/9.9.9-test/kernel/a.ko", "/lib/modules/9.9.9-test/kernel/b.ko"], tree.AddClosureTo(archive, ["b"]));
        var files = archive.Entries.ToDictionary(e => e.Path);
        Assert.Equal(elf, files["lib/modules/9.9.9-test/kernel/a.ko"].Data.ToArray());
        string dep = Encoding.UTF8.GetString(files["lib/modules/9.9.9-test/modules.dep"].Data.Span);
        Assert.Equal("kernel/a.ko:\nkernel/b.ko: kernel/a.ko\n", dep);
        var aliases = ModuleAliases.Parse(files["lib/modules/9.9.9-test/modules.alias"].Data.ToArray());
        Assert.Equal([new ModuleAlias("pci:v00001234d*", "b")], aliases.Entries);
        // What the machine reads back is what coldplug needs: b after a.
        Assert.Equal(["kernel/a.ko", "kernel/b.ko"], ModuleDependencies.Parse(dep).Closure(["b"]));
    }

    [Fact]
    public void Index_errors_of_the_build_tree_are_image_errors()
    {
        Assert.Equal(ImageError.ModulesDepMalformed, Assert.Throws<ImageException>(() => Tree("no colon\n", "")).Reason);
        Assert.Equal(ImageError.ModulesDepMalformed, Assert.Throws<ImageException>(() => Tree(Dep, "alias x\n")).Reason);
        Assert.Equal(ImageError.ModuleNotFound, Assert.Throws<ImageException>(() => Tree(Dep, Alias).Select(["igb"])).Reason);
        Assert.Equal(ImageError.ModuleDependencyCycle, Assert.Throws<ImageException>(() => Tree("a.ko: b.ko\nb.ko: a.ko\n", "").Select(["a"])).Reason);
    }

    [GuestKernelFact]
    public void On_the_debian_kernel_virtio_net_alone_brings_the_virtio_pci_transport()
    {
        GuestKernel kernel = GuestKernel.Require();
        var tree = ModuleTree.Open(kernel.Release);
        var closure = tree.Dependencies.Closure(["virtio_net"]).Select(ModuleDependencies.NameOf).ToList();
        Assert.DoesNotContain("virtio_pci", closure);                    // the dependency closure alone has no transport
        Assert.Equal("virtio_net", closure[^1]);
        var transports = tree.Transports(["virtio_net"]);
        Assert.Contains("virtio_pci", transports);
        Assert.All(transports, t => Assert.DoesNotContain(tree.Aliases.Entries, a => a.Module == t && a.Bus == "virtio"));
        Assert.Empty(tree.Transports(["wireguard"]));
        var selection = tree.Select(["virtio_net"]).Select(ModuleDependencies.NameOf).ToList();
        Assert.True(selection.IndexOf("virtio") < selection.IndexOf("virtio_pci"));
        Assert.True(selection.IndexOf("failover") < selection.IndexOf("net_failover"));
        Assert.True(selection.Count < 20, string.Join(",", selection));
        var archive = new CpioArchive();
        tree.AddClosureTo(archive, ["virtio_net"]);
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

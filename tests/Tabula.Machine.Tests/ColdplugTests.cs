using Tabula.Linux;
using Tabula.Machine.Modules;

namespace Tabula.Machine.Tests;

/// <summary>
/// Coldplug over a machine laid out in a temporary root: /proc/sys/kernel/osrelease, the image's modules.dep and
/// modules.alias, and /sys/bus/*/devices/*/modalias as QEMU's q35/pc machines show them. Loading virtio_pci makes
/// virtio0 appear, as the kernel does while the module probes.
/// </summary>
public sealed class ColdplugTests : IDisposable
{
    const string Release = "6.1.0-test";
    readonly string root = Directory.CreateTempSubdirectory("tabula-coldplug-").FullName;
    readonly List<string> loaded = [];

    public ColdplugTests()
    {
        Write("proc/sys/kernel/osrelease", Release + "\n");
        Write($"lib/modules/{Release}/modules.dep", """
            kernel/virtio_ring.ko:
            kernel/virtio.ko: kernel/virtio_ring.ko
            kernel/virtio_pci.ko: kernel/virtio.ko kernel/virtio_ring.ko
            kernel/virtio_mmio.ko: kernel/virtio.ko kernel/virtio_ring.ko
            kernel/failover.ko:
            kernel/virtio_net.ko: kernel/failover.ko kernel/virtio.ko kernel/virtio_ring.ko
            kernel/virtio_blk.ko: kernel/virtio.ko kernel/virtio_ring.ko
            kernel/udp_tunnel.ko:
            kernel/wireguard.ko: kernel/udp_tunnel.ko
            kernel/e1000e.ko:
            kernel/fs/efivarfs/efivarfs.ko:
            """);
        Write($"lib/modules/{Release}/modules.alias", """
            alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
            alias acpi*:LNRO0005:* virtio_mmio
            alias of:N*T*Cvirtio,mmio virtio_mmio
            alias virtio:d00000001v* virtio_net
            alias virtio:d00000002v* virtio_blk
            alias rtnl-link-wireguard wireguard
            alias pci:v00008086d000010D3sv*sd*bc*sc*i* e1000e
            alias fs-efivarfs efivarfs
            """);
        Write("sys/bus/pci/devices/0000:00:00.0/modalias", "pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00\n");
        Write("sys/bus/pci/devices/0000:00:03.0/modalias", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00\n");
        Write("sys/bus/platform/devices/serial8250/modalias", "platform:serial8250\n");
        Write("sys/bus/cpu/devices/cpu0/uevent", "");    // a device without a modalias asks for nothing
    }

    void Write(string relative, string text)
    {
        string path = Path.Combine(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    /// <summary>Records loads; virtio_pci's probe registers the virtio devices behind the PCI function.</summary>
    sealed class Kernel(ColdplugTests test, bool failBlk = false) : IModuleLoader
    {
        public bool Load(string path)
        {
            string name = ModuleDependencies.NameOf(path);
            Assert.True(File.Exists(path), path);
            if (failBlk && name == "virtio_blk") throw new IOException("Exec format error");
            if (name == "efivarfs") throw new LinuxException("finit_module(fd=7, params='', flags=0x0)", (int)Errno.ENODEV);
            if (test.loaded.Contains(name)) return false;
            test.loaded.Add(name);
            if (name == "virtio_pci")
            {
                test.Write("sys/bus/virtio/devices/virtio0/modalias", "virtio:d00000001v00001AF4\n");
                test.Write("sys/bus/virtio/devices/virtio1/modalias", "virtio:d00000002v00001AF4\n");
            }
            return true;
        }
    }

    void TouchModules()
    {
        foreach (string line in File.ReadLines(Path.Combine(root, $"lib/modules/{Release}/modules.dep")))
            Write($"lib/modules/{Release}/{line[..line.IndexOf(':')]}", "\x7fELF");
    }

    [Fact]
    public void A_virtio_nic_behind_pci_is_loaded_in_three_rounds_with_dependencies_first()
    {
        TouchModules();
        var result = new Coldplug(root, new Kernel(this)).Run();

        // Round 0: what no device can ask for (wireguard and the libraries); 1: the PCI transport; 2: what virtio0/1 ask for.
        Assert.Equal(["failover", "udp_tunnel", "virtio_ring", "virtio", "wireguard", "virtio_pci", "virtio_net", "virtio_blk"], loaded);
        Assert.Equal(["virtio_pci", "virtio_net", "virtio_blk"], result.Matched);
        Assert.DoesNotContain("e1000e", loaded);
        Assert.DoesNotContain("virtio_mmio", loaded);
        Assert.Equal(3, result.Rounds);
        Assert.Equal(5, result.Devices);
        Assert.Equal("loaded=8 already=0 failed=0", result.Counts);
        // efivarfs on a machine without EFI: its init says ENODEV; nothing to drive, not a failure.
        Assert.Equal(["efivarfs"], result.NoDevice);
        Assert.EndsWith(" no-device=efivarfs", result.Summary);
    }

    [Fact]
    public void A_failing_module_is_reported_and_the_rest_still_load()
    {
        TouchModules();
        var result = new Coldplug(root, new Kernel(this, failBlk: true)).Run();
        var failure = Assert.Single(result.Failed);
        Assert.Equal("virtio_blk", failure.Module);
        Assert.Contains("virtio_net", loaded);
    }

    [Fact]
    public void No_index_for_the_running_kernel_loads_nothing()
    {
        Write("proc/sys/kernel/osrelease", "6.12.0-other\n");
        var result = new Coldplug(root, new Kernel(this)).Run();
        Assert.Empty(loaded);
        Assert.Equal("loaded=0 already=0 failed=0", result.Counts);
    }

    [Fact]
    public void A_broken_index_in_the_image_is_a_typed_error()
    {
        Write($"lib/modules/{Release}/modules.alias", "alias only-two\n");
        Assert.Equal(ModuleIndexError.AliasMalformed, Assert.Throws<ModuleIndexException>(() => new Coldplug(root, new Kernel(this)).Run()).Reason);
    }

    public void Dispose() => Directory.Delete(root, recursive: true);
}

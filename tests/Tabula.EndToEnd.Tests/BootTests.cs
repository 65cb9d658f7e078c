using System.Security.Cryptography;
using System.Text;
using Tabula.EndToEnd.Tests.Harness;
using Tabula.Testing;

namespace Tabula.EndToEnd.Tests;

/// <summary>
/// The low-level boot path, end to end under QEMU (TCG): a static NativeAOT /init built by this repository, in an
/// initramfs written by Tabula.Images, on the Debian guest kernel.
/// </summary>
[Collection(BootCollection.Name)]
public sealed class BootTests(BootBinary boot, ITestOutputHelper output)
{
    static readonly TimeSpan BootTimeout = TimeSpan.FromSeconds(90);

    [GuestKernelFact(needsRoot: true, "qemu-system-x86_64", "ip", "clang")]
    public void Static_init_loads_virtio_net_configures_the_nic_with_rtnetlink_fetches_over_http_and_powers_off()
    {
        Prerequisites.Require(needsRoot: true, "qemu-system-x86_64", "ip", "clang");
        GuestKernel kernel = GuestKernel.Require();
        byte[] body = Encoding.UTF8.GetBytes($"hello-from-the-namespace-{Guid.NewGuid():N}");
        string expectedHash = Convert.ToHexStringLower(SHA256.HashData(body));

        string init = boot.Path;
        string initramfs = BootImage.WithInit(init).WithModules(kernel.Release, "virtio_net", "virtio_pci").Write("fetch");
        using var network = TapNetwork.Create();
        using var server = StaticHttpServer.Start(network, 8080, body);
        string url = $"http://{network.HostAddress}:8080/hello.txt";
        using var machine = QemuMachine.Start(nameof(Static_init_loads_virtio_net_configures_the_nic_with_rtnetlink_fetches_over_http_and_powers_off),
            new QemuOptions(kernel.KernelPath, initramfs,
                $"console=ttyS0 panic=-1 quiet -- fetch {network.GuestAddress}/24 {network.HostAddress} {url}", network));

        var started = machine.WaitForLine("tabula-boot: stage:start", BootTimeout);
        var modules = machine.WaitForLine("tabula-boot: stage:modules", BootTimeout);
        var net = machine.WaitForLine("tabula-boot: stage:network", BootTimeout);
        var fetched = machine.WaitForLine("TABULA-FETCHED", BootTimeout);
        TimeSpan off = machine.WaitForExit(BootTimeout);

        Assert.Contains($"sha256={expectedHash}", fetched.Line);
        Assert.Contains($"body={Encoding.UTF8.GetString(body)}", fetched.Line);
        Assert.Contains("mac=5254007AB001", net.Line);
        Assert.Equal(["GET /hello.txt HTTP/1.1"], server.Requests);
        Assert.DoesNotContain("FAILED", machine.Console);
        Assert.Equal(0, machine.ExitCode);
        output.WriteLine($"init size {new FileInfo(init).Length} bytes, initramfs {new FileInfo(initramfs).Length} bytes");
        output.WriteLine($"QEMU start -> /init running {started.At.TotalSeconds:0.00}s ({started.Line})");
        output.WriteLine($"modules loaded {modules.At.TotalSeconds:0.00}s ({modules.Line})");
        output.WriteLine($"network up {net.At.TotalSeconds:0.00}s, fetched {fetched.At.TotalSeconds:0.00}s, powered off {off.TotalSeconds:0.00}s");
    }

    [GuestKernelFact(needsRoot: true, "qemu-system-x86_64", "clang")]
    public void Kexec_into_the_same_kernel_boots_a_second_initramfs_that_prints_its_marker()
    {
        Prerequisites.Require(needsRoot: true, "qemu-system-x86_64", "clang");
        GuestKernel kernel = GuestKernel.Require();
        string nonce = Guid.NewGuid().ToString("N");

        byte[] stage2;
        using (var memory = new MemoryStream())
        {
            BootImage.WithInit(boot.Path).AddFile("etc/tabula/marker", Encoding.UTF8.GetBytes($"stage2 nonce={nonce}\n")).WriteGzipTo(memory);
            stage2 = memory.ToArray();
        }
        string initramfs = BootImage.WithInit(boot.Path)
            .AddFileFrom("boot/vmlinuz", kernel.KernelPath)
            .AddFile("boot/stage2.cpio.gz", stage2)
            .AddFile("etc/tabula/kexec-cmdline", "console=ttyS0 panic=-1 quiet -- marker /etc/tabula/marker\n"u8.ToArray())
            .Write("kexec-stage1");

        using var machine = QemuMachine.Start(nameof(Kexec_into_the_same_kernel_boots_a_second_initramfs_that_prints_its_marker),
            new QemuOptions(kernel.KernelPath, initramfs,
                "console=ttyS0 panic=-1 quiet -- kexec /boot/vmlinuz /boot/stage2.cpio.gz /etc/tabula/kexec-cmdline"));

        var first = machine.WaitForLine("tabula-boot: stage:start", BootTimeout);
        var loaded = machine.WaitForLine("tabula-boot: stage:kexec", BootTimeout);
        var marker = machine.WaitForLine("TABULA-MARKER", BootTimeout);
        TimeSpan off = machine.WaitForExit(BootTimeout);

        Assert.Contains($"stage2 nonce={nonce}", marker.Line);
        Assert.Contains("args=[kexec", first.Line);
        Assert.Equal(2, machine.Console.Split('\n').Count(l => l.Contains("tabula-boot: stage:start", StringComparison.Ordinal)));
        Assert.DoesNotContain("FAILED", machine.Console);
        output.WriteLine($"stage-1 initramfs {new FileInfo(initramfs).Length} bytes, stage-2 {stage2.Length} bytes");
        output.WriteLine($"stage 1 /init {first.At.TotalSeconds:0.00}s, kexec loaded {loaded.At.TotalSeconds:0.00}s ({loaded.Line})");
        output.WriteLine($"stage 2 marker {marker.At.TotalSeconds:0.00}s ({marker.Line}), powered off {off.TotalSeconds:0.00}s");
    }
}

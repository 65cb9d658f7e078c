using System.Diagnostics;
using Tabula.Qemu;
using Tabula.WireGuard.Tests.Support;

namespace Tabula.WireGuard.Tests;

/// <summary>
/// The kernel generic-netlink client against the real WireGuard module: this machine kind's kernel lacks
/// CONFIG_WIREGUARD, so Debian's kernel (which has the module) boots in QEMU with software emulation (Tabula.Qemu's
/// launcher; Guest/kernel-guest.sh --prepare builds its initramfs), the host's root filesystem shared read-only, and runs the bench program's <c>kernel-check</c> there
/// (bench/Tabula.WireGuard.Bench/KernelGuest.cs): create the link through rtnetlink, 2000 peers with a fragmented
/// one through netlink, read back through our client and wg(8), deltas, and a ping between two kernel endpoints in
/// two namespaces.
/// </summary>
public sealed class KernelGuestTests
{
    [PrivilegedFact("qemu-system-x86_64", "cpio", "busybox")]
    public void Kernel_client_passes_its_checks_against_the_real_module_in_a_guest()
    {
        bool haveKernel = Directory.Exists("/boot") && Directory.GetFiles("/boot", "vmlinuz-*").Length > 0;
        if (!haveKernel && !Prerequisites.IsCi)
            return;   // no guest kernel on a developer machine: nothing to boot (CI installs linux-image-amd64)
        Assert.True(haveKernel, "no guest kernel: install linux-image-amd64 (scripts/setup)");
        string script = Path.Combine(Vectors.RepositoryRoot, "tests", "Tabula.WireGuard.Tests", "Guest", "kernel-guest.sh");
        // Not under /tmp: the guest mounts tmpfs there, hiding the copy of the bench program the script leaves in DIR.
        string dir = Path.Combine("/var/tmp", $"tabula-wg-guest.{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            var guest = Prepare(script, dir);
            using var machine = QemuMachine.Start(new QemuOptions("wg-kernel-guest", guest["kernel"], guest["initrd"], guest["append"],
                Path.Combine(dir, "console.log"))
            {
                MachineType = "q35", MemoryMiB = 2048, Cpus = 2,
                HostShare = new QemuHostShare("/", "hostroot"),   // the host's root, read-only: dotnet, wg, ip and the bench program
            });
            machine.WaitFor("GUEST-UP", TimeSpan.FromMinutes(5));
            machine.WaitFor("GUEST-EXIT", TimeSpan.FromMinutes(25));
            machine.WaitForExit(TimeSpan.FromMinutes(1));   // /init powers off
            string console = machine.Console;
            Assert.True(console.Contains("KERNEL-CHECK done failures=0", StringComparison.Ordinal) &&
                        console.Contains("GUEST-EXIT 0", StringComparison.Ordinal),
                "kernel checks failed:\n" + string.Join('\n', console.Split('\n').Where(l => l.Contains("KERNEL-CHECK") || l.Contains("GUEST") || l.Contains("xception"))));
            foreach (string check in new[] { "device-round-trip", "tunnel-ping", "family-resolves" })
                Assert.Contains($"KERNEL-CHECK {check} ok", console);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Runs <c>kernel-guest.sh --prepare DIR kernel-check</c>, which builds the guest's initramfs and prints
    /// kernel=, initrd= and append= lines.</summary>
    static Dictionary<string, string> Prepare(string script, string dir)
    {
        var start = new ProcessStartInfo(script)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            ArgumentList = { "--prepare", dir, "kernel-check" },
            // The bench program is a build-only project reference, so it was built with this project, in its configuration.
            Environment = { ["TABULA_WG_BENCH_DLL"] = BenchProgram },
        };
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"kernel-guest.sh --prepare exited {process.ExitCode}: {stderr.Result}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('=', 2))
            .ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
    }

    static string BenchProgram
    {
        get
        {
            // The tests run from tests/…/bin/CONFIGURATION/TFM/; the bench builds to bench/…/bin/CONFIGURATION/TFM/.
            var tfm = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
            string dll = Path.Combine(Vectors.RepositoryRoot, "bench", "Tabula.WireGuard.Bench", "bin", tfm.Parent!.Name, tfm.Name,
                "Tabula.WireGuard.Bench.dll");
            Assert.True(File.Exists(dll), $"the bench program was not built with the tests: {dll}");
            return dll;
        }
    }
}

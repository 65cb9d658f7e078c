using System.Diagnostics;
using Tabula.WireGuard.Tests.Support;

namespace Tabula.WireGuard.Tests;

/// <summary>
/// The kernel generic-netlink client against the real WireGuard module: this machine kind's kernel lacks
/// CONFIG_WIREGUARD, so Guest/kernel-guest.sh boots Debian's kernel (which has the module) in QEMU with software
/// emulation, the host's root filesystem shared read-only, and runs the bench program's <c>kernel-check</c> there
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
        var start = new ProcessStartInfo(script, "kernel-check")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            // The bench program is a build-only project reference, so it was built with this project, in its configuration.
            Environment = { ["TABULA_WG_BENCH_DLL"] = BenchProgram },
        };
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        string console = output + stderr.Result;
        Assert.True(console.Contains("GUEST-UP", StringComparison.Ordinal), "the guest did not come up:\n" + console);
        Assert.True(console.Contains("KERNEL-CHECK done failures=0", StringComparison.Ordinal) &&
                    console.Contains("GUEST-EXIT 0", StringComparison.Ordinal),
            "kernel checks failed:\n" + string.Join('\n', console.Split('\n').Where(l => l.Contains("KERNEL-CHECK") || l.Contains("GUEST") || l.Contains("xception"))));
        foreach (string check in new[] { "device-round-trip", "tunnel-ping", "family-resolves" })
            Assert.Contains($"KERNEL-CHECK {check} ok", console);
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

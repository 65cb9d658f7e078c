using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Tabula.Packaging.Cpio;

namespace Tabula.Qemu.Tests;

/// <summary>
/// Real swtpm (packages swtpm, swtpm-tools; tpm2-tools as the independent reader): a TPM manufactured with the lab's CA
/// carries an EK certificate that chains to it, and a guest booted with it sees a TPM 2.0. Run under flock /work/qemu.lock.
/// </summary>
public sealed class SwtpmTests : IDisposable
{
    readonly string dir = $"/var/tmp/tabula-swtpm-test-{Environment.ProcessId}-{RandomNumberGenerator.GetHexString(8, lowercase: true)}";

    public void Dispose()
    {
        if (Directory.Exists(dir))
            Directory.Delete(dir, recursive: true);
    }

    [ToolsFact("swtpm", "swtpm_setup", "swtpm_localca", "tpm2_nvread", "tpm2_pcrread")]
    public void A_manufactured_tpm_has_an_ek_certificate_issued_by_the_lab_manufacturer_ca()
    {
        var manufacturer = TpmManufacturer.OpenOrCreate(Path.Combine(dir, "ca"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(manufacturer.KeyPath));
        Assert.Same(manufacturer.CertificatePem, manufacturer.CertificatePem);
        Assert.Equal(manufacturer.CertificatePem, TpmManufacturer.OpenOrCreate(Path.Combine(dir, "ca")).CertificatePem);   // kept, not remade
        string state = Path.Combine(dir, "tpm");
        Swtpm.Manufacture(state, manufacturer);
        Assert.Throws<QemuException>(() => Swtpm.Manufacture(state, manufacturer));   // one TPM per state directory

        string ek = Path.Combine(dir, "ek.der"), platform = Path.Combine(dir, "platform.der");
        int pid;
        using (var swtpm = Swtpm.StartServer(state, Path.Combine(dir, "swtpm.log")))
        {
            pid = swtpm.Pid;
            Prerequisites.Run("tpm2_nvread", "--tcti", swtpm.Tcti, "0x" + Swtpm.RsaEkCertificateIndex.ToString("x8"), "-o", ek);
            Prerequisites.Run("tpm2_nvread", "--tcti", swtpm.Tcti, "0x" + Swtpm.PlatformCertificateIndex.ToString("x8"), "-o", platform);
            // A fresh TPM: the PCRs stboot measures into are zero and only the SHA-256 bank is active.
            string pcrs = Prerequisites.Run("tpm2_pcrread", "--tcti", swtpm.Tcti, "sha256:12,13,14");
            Assert.Equal(3, pcrs.Split('\n').Count(l => l.Contains(": 0x" + new string('0', 64), StringComparison.Ordinal)));
        }
        Assert.False(File.Exists($"/proc/{pid}/cmdline"), "swtpm still runs after Dispose");

        using var root = X509Certificate2.CreateFromPem(manufacturer.CertificatePem);
        using var ekCert = X509CertificateLoader.LoadCertificate(File.ReadAllBytes(ek));
        Assert.Equal(root.SubjectName.RawData, ekCert.IssuerName.RawData);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        // The EK certificate is an RSA key certified for key encipherment (TCG EK profile); validate the signature only.
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.IgnoreWrongUsage | X509VerificationFlags.IgnoreInvalidPolicy;
        Assert.True(chain.Build(ekCert), string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation)));
        Assert.True(new FileInfo(platform).Length > 100);

        // Another manufacturer's CA does not issue this EK.
        using var other = X509Certificate2.CreateFromPem(TpmManufacturer.OpenOrCreate(Path.Combine(dir, "other-ca")).CertificatePem);
        using var foreign = new X509Chain();
        foreign.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        foreign.ChainPolicy.CustomTrustStore.Add(other);
        foreign.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        Assert.False(foreign.Build(ekCert));
    }

    [ToolsFact("swtpm", "tpm2_pcrread")]
    public void A_new_server_tpm_lives_in_a_temporary_directory_removed_with_it()
    {
        string state;
        using (var swtpm = Swtpm.StartServer())
        {
            state = swtpm.StateDirectory;
            Assert.True(Directory.Exists(state));
            string pcrs = Prerequisites.Run("tpm2_pcrread", "--tcti", swtpm.Tcti, "sha256:12");   // started: it answers
            Assert.Contains(": 0x" + new string('0', 64), pcrs, StringComparison.Ordinal);
        }
        Assert.False(Directory.Exists(Path.GetDirectoryName(state)), "the temporary TPM's directory outlived it");
    }

    [GuestKernelFact(needsRoot: false, "qemu-system-x86_64", "busybox", "swtpm", "swtpm_setup", "swtpm_localca")]
    public void A_guest_with_an_swtpm_sees_a_tpm_2_0_and_swtpm_ends_with_qemu()
    {
        var manufacturer = TpmManufacturer.OpenOrCreate(Path.Combine(dir, "ca"));
        string state = Path.Combine(dir, "tpm");
        Swtpm.Manufacture(state, manufacturer);
        foreach (var device in new[] { TpmInterface.Tis, TpmInterface.Crb })
        {
            string socket = Path.Combine(dir, $"swtpm-{device}.sock");
            using var swtpm = Swtpm.StartForQemu(state, socket, Path.Combine(dir, $"swtpm-{device}.log"));
            var options = new QemuOptions($"tpm-{device}", GuestKernel.Require().KernelPath, Initramfs(), "console=ttyS0 panic=-1 quiet",
                Path.Combine(dir, $"tpm-{device}", "console.log"))
            {
                MemoryMiB = 256, Tpm = new QemuTpm(socket, device), MachineType = device == TpmInterface.Crb ? "q35" : null,
            };
            using (var machine = QemuMachine.Start(options))
            {
                var line = machine.WaitFor("TPM-TEST", TimeSpan.FromMinutes(3)).Line;
                Assert.Contains("major=2", line);
                // The kernel's own reader (sysfs, Linux 5.12+): PCR 12 of a fresh TPM is zero.
                Assert.Contains("pcr12=" + new string('0', 64), line, StringComparison.OrdinalIgnoreCase);
                machine.WaitForExit(TimeSpan.FromMinutes(1));
            }
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (File.Exists($"/proc/{swtpm.Pid}/cmdline") && DateTime.UtcNow < deadline)
                Thread.Sleep(50);
            Assert.False(File.Exists($"/proc/{swtpm.Pid}/cmdline") && File.ReadAllText($"/proc/{swtpm.Pid}/cmdline").StartsWith("swtpm", StringComparison.Ordinal),
                "swtpm did not end with QEMU (--terminate)");
        }
        Assert.Empty(Directory.GetFiles(dir, "*.sock"));
    }

    string Initramfs()
    {
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, "initrd.cpio");
        const string script = "busybox mount -t sysfs sysfs /sys\n"
            + "busybox echo TPM-TEST major=$(busybox cat /sys/class/tpm/tpm0/tpm_version_major) pcr12=$(busybox cat /sys/class/tpm/tpm0/pcr-sha256/12)\n"
            + "busybox poweroff -f";
        var archive = new CpioArchive()
            .AddDirectory("bin").AddDirectory("dev").AddDirectory("proc").AddDirectory("sys")
            .AddCharacterDevice("dev/console", 5, 1)
            .AddFileFrom("bin/busybox", "/bin/busybox", CpioArchive.ExecutableMode)
            .AddSymbolicLink("bin/sh", "busybox")
            .AddFile("init", System.Text.Encoding.ASCII.GetBytes("#!/bin/sh\nexport PATH=/bin\n" + script + "\n"), CpioArchive.ExecutableMode);
        using var file = File.Create(path);
        archive.WriteTo(file);
        return path;
    }
}

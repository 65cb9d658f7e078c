using System.Text;
using Tabula.EndToEnd.Tests.Harness;
using Tabula.Qemu;
using Tabula.Testing;
using Tabula.Testing.Packages;

namespace Tabula.EndToEnd.Tests;

/// <summary>
/// stboot booted by UEFI firmware (issue 20): OVMF (Debian's OVMF_CODE_4M.fd, a copy of OVMF_VARS_4M.fd per machine)
/// on q35 under TCG boots the UKI from an ESP or the hybrid ISO from a CD; stboot fetches, verifies and kexecs the
/// same signed marker OS as the BIOS tests (<see cref="OsPackages"/>), served by a mirror on the test's tap. The host
/// configuration comes from the STHostConfig EFI variable written into the variable store by Tabula's writer, with no
/// file in the image: the firmware reading it is the writer's cross-check.
/// </summary>
[Collection(BootCollection.Name)]
public sealed class UefiTests(BootBinary boot, ITestOutputHelper output) : IDisposable
{
    static readonly TimeSpan Stage = TimeSpan.FromSeconds(300);
    const string Marker = "TABULA-MARKER";
    readonly string work = Directory.CreateTempSubdirectory("tabula-e2e-uefi-").FullName;
    readonly TestSigner root = SignedPackages.Root();

    public void Dispose() => Directory.Delete(work, recursive: true);

    OsPackages Os => OsPackages.For(boot);

    string Trust(string name) => SignedPackages.TrustPolicy(Path.Combine(work, name), 2, "network", [root]);

    MirrorServer Mirror(TapNetwork network)
    {
        byte[] descriptor = SignedPackages.Descriptor(Os.Archive, "os.zip", SignedPackages.Leaf(root), SignedPackages.Leaf(root));
        return MirrorServer.Start(network, 8080, path => path switch
        {
            "/os.json" => (200, descriptor),
            "/os.zip" => (200, Os.Archive),
            _ => (404, []),
        });
    }

    static string HostConfig(TapNetwork network) => $$"""
        {"network_mode": "static", "host_ip": "{{network.GuestAddress}}/24", "gateway": "{{network.HostAddress}}",
         "network_interfaces": [{"interface_name": "eth0", "mac_address": "{{Guest.DefaultMac}}"}],
         "ospkg_pointer": "http://{{network.HostAddress}}:8080/os.json"}
        """;

    void Report(QemuMachine machine, string what)
    {
        output.WriteLine($"{what}: {machine.Command}");
        foreach (var line in machine.Serial.Lines.Where(l => l.Line.Contains("tabula-boot:") || l.Line.Contains(Marker) || l.Line.Contains("BdsDxe")))
            output.WriteLine($"[{line.At.TotalSeconds,7:F1}s] {line.Line}");
        output.WriteLine($"log: {machine.ConsoleLog}");
    }

    /// <summary>One boot to the OS marker: when stboot's kexec line and the marker came (QEMU start = 0), how long the
    /// kexec load call took (the kexec-load stage's <c>load=</c>) and the method line.</summary>
    sealed record HandoverRun(TimeSpan Kexec, TimeSpan Marker, long LoadMs, string Method, string MarkerLine);

    static readonly System.Text.RegularExpressions.Regex KexecLoadStage = new("load=(\\d+)ms method=\"([^\"]*)\"");

    HandoverRun BootToMarker(QemuMachine machine, string what)
    {
        try
        {
            var config = machine.WaitFor(ConsoleMarker.Boot("stage:config"), Stage);
            var kexec = machine.WaitFor(ConsoleMarker.Boot("kexec"), Stage);
            var marker = machine.WaitFor(Marker, Stage);
            machine.WaitForExit(Stage);
            var stage = machine.Serial.Lines.Single(l => l.Line.Contains("tabula-boot: stage:kexec-load", StringComparison.Ordinal)).Line;
            var match = KexecLoadStage.Match(stage);
            Assert.True(match.Success, stage);
            Assert.Contains($"{Marker} ospkg_sha256={Os.Sha256Hex} source=network", marker.Line);
            Assert.DoesNotContain("FAILED", machine.Console);
            Assert.Equal(0, machine.ExitCode);
            Assert.Contains("host_config=", config.Line);
            return new HandoverRun(kexec.At, marker.At, long.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), match.Groups[2].Value, marker.Line);
        }
        finally
        {
            Report(machine, what);
        }
    }

    /// <summary>
    /// The UKI on an ESP, no host configuration in it: stboot loads efivarfs (a module on Debian's kernel, added to the
    /// image because no --host-config was given), reads STHostConfig, fetches, verifies and hands over with its own
    /// kexec_load layout, EFI state included (efi_info, runtime map, SETUP_EFI): the package kernel comes up with EFI
    /// runtime services (the marker's efi=runtime). Then, in the same run, the same UKI with --kexec=file
    /// (kexec_file_load), and the same package through the same stboot image booted with -kernel/-initrd (SeaBIOS, host
    /// configuration as a file): power-on to kexec and to the OS marker, and the load call, side by side.
    /// </summary>
    [GuestKernelFact(needsRoot: true, "qemu-system-x86_64", "ip", "clang", QemuFirmware.DebianCode, UefiMedia.Stub)]
    public void Uki_in_ovmf_reads_the_host_configuration_from_the_efi_variable_and_hands_over_with_kexec_load_and_kexec_file_load()
    {
        Prerequisites.Require(needsRoot: true, "qemu-system-x86_64", "ip", "clang", QemuFirmware.DebianCode, UefiMedia.Stub);
        GuestKernel kernel = GuestKernel.Require();
        using var network = TapNetwork.Create();
        using var mirror = Mirror(network);
        string trust = Trust("trust");
        string name = nameof(Uki_in_ovmf_reads_the_host_configuration_from_the_efi_variable_and_hands_over_with_kexec_load_and_kexec_file_load);
        byte[] hostConfig = Encoding.UTF8.GetBytes(HostConfig(network));
        byte[] uki = UefiMedia.Uki(boot, trust, hostConfigJson: null, ["virtio_net"], "console=ttyS0 panic=-1 quiet", "uefi-uki");
        byte[] ukiFile = UefiMedia.Uki(boot, trust, hostConfigJson: null, ["virtio_net"], "console=ttyS0 panic=-1 quiet -- --kexec=file", "uefi-uki-file");

        HandoverRun load, file;
        using (var machine = Guest.StartUefi(name, UefiMedia.Firmware("uefi-uki", hostConfig), UefiMedia.Esp(uki, "uefi-uki"), network))
        {
            load = BootToMarker(machine, "UKI in OVMF, kexec_load");
            Assert.Contains("host_config=efivar:STHostConfig", machine.Console);
            Assert.Contains("firmware=uefi secure_boot=off lockdown=none", machine.Console);
            Assert.Contains(machine.Serial.Lines, l => l.Line.Contains("tabula-boot: stage:modules") && l.Line.Contains("loaded="));
        }
        Assert.StartsWith("kexec_load kernel@", load.Method);
        Assert.Contains(" efi=systab@0x", load.Method);
        Assert.Contains(" efi=runtime ", load.MarkerLine);
        Assert.Contains(" setup_data=9,4 ", load.MarkerLine);   // our SETUP_RNG_SEED, then SETUP_EFI

        using (var machine = Guest.StartUefi(name + "-file", UefiMedia.Firmware("uefi-uki-file", hostConfig), UefiMedia.Esp(ukiFile, "uefi-uki-file"), network))
            file = BootToMarker(machine, "UKI in OVMF, --kexec=file");
        Assert.Equal("kexec_file_load (kexec_load: --kexec=file)", file.Method);
        Assert.Contains(" efi=runtime ", file.MarkerLine);

        // The same package, same stboot, BIOS and -kernel/-initrd: the host configuration is then a file of the image.
        string image = Os.StbootImage("uefi-direct", trust, HostConfig(network), ["virtio_net"]);
        HandoverRun direct;
        using (var machine = Guest.Start(name + "-direct", kernel.KernelPath, image, "console=ttyS0 panic=-1 quiet", network))
        {
            direct = BootToMarker(machine, "-kernel/-initrd");
            Assert.Contains("firmware=bios", machine.Console);
            Assert.Contains("no-device=efivarfs", machine.Console);   // in the image, nothing for it without EFI: no failure
        }
        Assert.StartsWith("kexec_load kernel@", direct.Method);
        Assert.DoesNotContain(" efi=systab", direct.Method);
        Assert.Contains(" efi=none ", direct.MarkerLine);
        output.WriteLine($"UKI {uki.Length} bytes. Power-on to kexec / to the OS marker / the load call:");
        output.WriteLine($"  OVMF+UKI kexec_load:      {load.Kexec.TotalSeconds:F1} s / {load.Marker.TotalSeconds:F1} s / {load.LoadMs} ms");
        output.WriteLine($"  OVMF+UKI kexec_file_load: {file.Kexec.TotalSeconds:F1} s / {file.Marker.TotalSeconds:F1} s / {file.LoadMs} ms");
        output.WriteLine($"  SeaBIOS+-kernel kexec_load: {direct.Kexec.TotalSeconds:F1} s / {direct.Marker.TotalSeconds:F1} s / {direct.LoadMs} ms");
    }

    /// <summary>The hybrid ISO on a CD drive (a BMC's virtual media): El Torito's UEFI image is the ESP holding the UKI;
    /// here the host configuration is a file of the image.</summary>
    [GuestKernelFact(needsRoot: true, "qemu-system-x86_64", "ip", "clang", "xorriso", "mformat", QemuFirmware.DebianCode, UefiMedia.Stub)]
    public void Iso_in_ovmf_boots_from_the_cd_fetches_verifies_and_kexecs()
    {
        Prerequisites.Require(needsRoot: true, "qemu-system-x86_64", "ip", "clang", "xorriso", "mformat", QemuFirmware.DebianCode, UefiMedia.Stub);
        using var network = TapNetwork.Create();
        using var mirror = Mirror(network);
        byte[] uki = UefiMedia.Uki(boot, Trust("trust"), HostConfig(network), ["virtio_net"], "console=ttyS0 panic=-1 quiet", "uefi-iso");
        using var machine = Guest.StartUefi(nameof(Iso_in_ovmf_boots_from_the_cd_fetches_verifies_and_kexecs), UefiMedia.Firmware("uefi-iso", null),
            UefiMedia.Iso(uki, "uefi-iso"), network);
        try
        {
            var config = machine.WaitFor(ConsoleMarker.Boot("stage:config"), Stage);
            var marker = machine.WaitFor(Marker, Stage);
            machine.WaitForExit(Stage);
            Assert.Contains("host_config=/etc/host_configuration.json", config.Line);
            Assert.Contains("firmware=uefi secure_boot=off", config.Line);
            Assert.Contains($"{Marker} ospkg_sha256={Os.Sha256Hex} source=network", marker.Line);
            Assert.Contains("method=\"kexec_load kernel@", machine.Console);
            Assert.Contains(" efi=runtime ", marker.Line);
            Assert.DoesNotContain("FAILED", machine.Console);
            Assert.Equal(0, machine.ExitCode);
        }
        finally
        {
            Report(machine, "ISO in OVMF");
        }
    }

    /// <summary>STHostConfig holding malformed JSON: each round prints a typed error naming the variable, waits and
    /// retries (as for a bad network); after --rounds the machine restarts (QEMU exits under -no-reboot). Never a hang.</summary>
    [GuestKernelFact(needsRoot: true, "qemu-system-x86_64", "clang", QemuFirmware.DebianCode, UefiMedia.Stub)]
    public void Malformed_json_in_the_efi_variable_is_a_console_error_every_round_then_a_restart()
    {
        Prerequisites.Require(needsRoot: true, "qemu-system-x86_64", "clang", QemuFirmware.DebianCode, UefiMedia.Stub);
        byte[] uki = UefiMedia.Uki(boot, Trust("trust"), hostConfigJson: null, [], "console=ttyS0 panic=-1 quiet -- --retry-wait=1 --rounds=2", "uefi-bad-var");
        using var machine = Guest.StartUefi(nameof(Malformed_json_in_the_efi_variable_is_a_console_error_every_round_then_a_restart),
            UefiMedia.Firmware("uefi-bad-var", """{"network_mode": "static", "host_ip": """u8.ToArray()), UefiMedia.Esp(uki, "uefi-bad-var"));
        try
        {
            var first = machine.WaitFor("round=1/2", Stage);
            var second = machine.WaitFor("round=2 next=reboot", Stage);
            machine.WaitFor(ConsoleMarker.Boot("restart"), Stage);
            machine.WaitForExit(Stage);
            foreach (var line in new[] { first.Line, second.Line })
            {
                Assert.Contains("stage=config reason=HostConfigInvalid", line);
                Assert.Contains("efivar:STHostConfig", line);
            }
            Assert.DoesNotContain(Marker, machine.Console);
            Assert.DoesNotContain("tabula-boot: stage:fetch", machine.Console);
        }
        finally
        {
            Report(machine, "malformed STHostConfig");
        }
    }

    /// <summary>
    /// Secure Boot with the test's own keys: PK, KEK and db made and enrolled by Tabula's variable store writer, OVMF's
    /// Secure Boot build (SMM). The UKI signed with the db key boots; Debian's kernel locks down (integrity), which
    /// stboot reports. The first package's kernel carries only Debian's signature, which this db does not trust:
    /// kexec_file_load refuses it and stboot retries; the next round's package has the same kernel signed with the db
    /// key, and it boots. stboot sees Secure Boot and lockdown, so it goes to kexec_file_load from the start and says why;
    /// the OS receives secure_boot=true in the hand-over and its own kernel is locked down too. The same signed UKI asked
    /// to use kexec_load only (--kexec=load) shows what the kernel says to it: EACCES, every round. The unsigned UKI, on
    /// the same keys, is refused by the firmware: stboot never starts.
    /// </summary>
    [GuestKernelFact(needsRoot: true, "qemu-system-x86_64", "ip", "clang", "sbsign", "sbattach", QemuFirmware.DebianSecureBootCode, UefiMedia.Stub)]
    public void Secure_boot_with_own_keys_boots_the_signed_uki_and_a_db_signed_package_kernel_through_kexec_file_load_and_refuses_the_unsigned_uki()
    {
        Prerequisites.Require(needsRoot: true, "qemu-system-x86_64", "ip", "clang", "sbsign", "sbattach", QemuFirmware.DebianSecureBootCode, UefiMedia.Stub);
        string keys = Path.Combine(work, "keys");
        Images.Uefi.SecureBootKeys.Create(keys, "Tabula E2E", DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        string dbKey = Path.Combine(keys, "db.key"), dbCert = Path.Combine(keys, "db.crt");
        byte[] ownKernelOs = Os.ArchiveWith(Images.Uefi.UkiSigner.SignKernel(File.ReadAllBytes(GuestKernel.Require().KernelPath), dbKey, dbCert));
        string ownDigest = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(ownKernelOs));

        using var network = TapNetwork.Create();
        var signers = new[] { SignedPackages.Leaf(root), SignedPackages.Leaf(root) };
        int rounds = 0;
        using var mirror = MirrorServer.Start(network, 8080, path =>
        {
            lock (signers)
            {
                byte[] archive = rounds == 0 ? Os.Archive : ownKernelOs;   // Debian's signature first, then the db key's
                if (path == "/os.json")
                    return (200, SignedPackages.Descriptor(archive, "os.zip", signers));
                if (path == "/os.zip")
                {
                    rounds++;
                    return (200, archive);
                }
                return (404, []);
            }
        });
        byte[] unsignedUki = UefiMedia.Uki(boot, Trust("trust"), HostConfig(network), ["virtio_net"], "console=ttyS0 panic=-1 quiet -- --retry-wait=1 --rounds=4", "uefi-sb");
        byte[] signedUki = Images.Uefi.UkiSigner.Sign(unsignedUki, dbKey, dbCert);

        string name = nameof(Secure_boot_with_own_keys_boots_the_signed_uki_and_a_db_signed_package_kernel_through_kexec_file_load_and_refuses_the_unsigned_uki);
        using (var machine = Guest.StartUefi(name, UefiMedia.Firmware("uefi-sb", null, keys), UefiMedia.Esp(signedUki, "uefi-sb"), network))
        {
            try
            {
                var config = machine.WaitFor(ConsoleMarker.Boot("stage:config"), Stage);
                var refused = machine.WaitFor("reason=KexecFailed", Stage);
                var marker = machine.WaitFor(Marker, Stage);
                machine.WaitForExit(Stage);
                Assert.Contains("firmware=uefi secure_boot=on lockdown=integrity", config.Line);
                Assert.Contains(machine.Serial.Lines, l => l.Line.Contains("tabula-boot: note:kexec", StringComparison.Ordinal)
                    && l.Line.Contains("kexec_file_load (lockdown=integrity refuses it; the kernel must be signed by a key in db", StringComparison.Ordinal));
                Assert.Contains("kexec_file_load", refused.Line);
                Assert.Contains("ENOKEY", refused.Line);
                Assert.Contains(machine.Serial.Lines, l => l.Line.Contains("tabula-boot: stage:kexec-load", StringComparison.Ordinal)
                    && l.Line.Contains("method=\"kexec_file_load (kexec_load: lockdown=integrity refuses it;", StringComparison.Ordinal));
                Assert.DoesNotContain("kexec_load(entry=", machine.Console);   // never tried
                Assert.Contains($"{Marker} ospkg_sha256={ownDigest} source=network secure_boot=true ", marker.Line);
                Assert.Contains(" efi=runtime lockdown=integrity ", marker.Line);   // the OS kernel got secure_boot in boot_params
                output.WriteLine($"lockdown refused Debian's signature: {refused.Line}");
            }
            finally
            {
                Report(machine, "Secure Boot, signed UKI");
            }
        }

        // --kexec=load: what the kernel under Secure Boot says to kexec_load, without stboot's fallback.
        byte[] loadOnlyUki = Images.Uefi.UkiSigner.Sign(
            UefiMedia.Uki(boot, Trust("trust-load"), HostConfig(network), ["virtio_net"], "console=ttyS0 panic=-1 quiet -- --retry-wait=1 --rounds=1 --kexec=load", "uefi-sb-load"),
            dbKey, dbCert);
        using (var machine = Guest.StartUefi(name + "-load", UefiMedia.Firmware("uefi-sb-load", null, keys), UefiMedia.Esp(loadOnlyUki, "uefi-sb-load"), network))
        {
            try
            {
                var refused = machine.WaitFor("reason=KexecFailed", Stage);
                machine.WaitFor(ConsoleMarker.Boot("restart"), Stage);
                machine.WaitForExit(Stage);
                Assert.Contains("kexec_load(entry=0x", refused.Line);
                Assert.Contains("= EACCES", refused.Line);
                Assert.Contains("note:kexec", machine.Console);
                Assert.Contains("kexec_load only (--kexec=load)", machine.Console);
                Assert.DoesNotContain(Marker, machine.Console);
                output.WriteLine($"kexec_load under Secure Boot: {refused.Line}");
            }
            finally
            {
                Report(machine, "Secure Boot, --kexec=load");
            }
        }

        using var refusedMachine = Guest.StartUefi(name + "-unsigned", UefiMedia.Firmware("uefi-sb-unsigned", null, keys), UefiMedia.Esp(unsignedUki, "uefi-sb-unsigned"));
        try
        {
            var denied = refusedMachine.WaitFor(l => l.Contains("Access Denied", StringComparison.Ordinal) || l.Contains("Security Violation", StringComparison.Ordinal),
                "the firmware refusing the unsigned UKI", Stage);
            output.WriteLine($"firmware: {denied.Line}");
            Thread.Sleep(TimeSpan.FromSeconds(5));
            Assert.DoesNotContain("tabula-boot:", refusedMachine.Console);
            Assert.DoesNotContain("Linux version", refusedMachine.Console);
        }
        finally
        {
            Report(refusedMachine, "Secure Boot, unsigned UKI");
        }
    }
}

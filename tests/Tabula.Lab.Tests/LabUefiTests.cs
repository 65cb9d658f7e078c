using System.Text.Json;
using Tabula.Testing;

namespace Tabula.Lab.Tests;

/// <summary>
/// `tabula lab up --firmware uefi --secure-boot --relays 1 --json` through the real CLI (issue 20): the relay is OVMF's Secure
/// Boot build booting the lab's db-signed stboot UKI from an ESP, its host configuration only in the STHostConfig EFI variable
/// of its own variable store (with the lab's PK, KEK and db enrolled); Debian's kernel locks down, stboot hands over with
/// kexec_file_load to the package kernel the lab signed with db. The relay enrolls and serves; the customer's client
/// handshakes, pings and reaches the echo host through it. `lab upgrade` then rolls release 2 (its kernel signed with db
/// again): the relay reboots inside its QEMU through the firmware into stboot and boots it. With the lab's default swtpm per
/// relay, measured boot and attestation (issue 19) hold under OVMF too: the controller and the customer's in-tunnel `relay
/// attest` verify both releases. `lab down` leaves nothing.
/// </summary>
public sealed class LabUefiTests(ITestOutputHelper output)
{
    readonly LabCli cli = new(output);

    [GuestKernelFact(needsRoot: true, "qemu-system-x86_64", "ip", "clang", "wireguard-go", "wg", "ping", "setsid", "sbsign", "sbattach",
        Qemu.QemuFirmware.DebianSecureBootCode, Images.Uefi.UkiImage.DebianStub)]
    public void Lab_up_with_uefi_secure_boot_serves_and_upgrades_one_relay()
    {
        Prerequisites.Require(needsRoot: true, "qemu-system-x86_64", "ip", "clang", "wireguard-go", "wg", "ping", "setsid", "sbsign", "sbattach",
            Qemu.QemuFirmware.DebianSecureBootCode, Images.Uefi.UkiImage.DebianStub);
        GuestKernel.Require();
        string dir = $"/var/tmp/tabula-lab-uefi-test-{Environment.ProcessId}";
        string ns = LabRunner.NamespaceFor(dir);
        try
        {
            var up = cli.Run(TimeSpan.FromMinutes(25), "lab", "up", "--secure-boot", "--relays", "1", "--json", "--dir", dir);
            Assert.True(up.Code == 0, $"lab up exited {up.Code}: {up.Stderr}");
            output.WriteLine(up.Stdout);
            var summary = JsonSerializer.Deserialize(up.Stdout, LabJson.Default.LabSummary)!;
            var relay = Assert.Single(summary.Relays);
            Assert.Equal(("deployed", true, true), (relay.State, relay.Handshake, relay.Ping));
            Assert.True(relay.EgressIpv4 == relay.PublicIpv4, $"the echo host saw {relay.EgressIpv4 ?? "nothing"} over IPv4");
            Assert.NotNull(relay.EgressIpv6);
            // With the relay's swtpm (the lab's default): stboot measured the package under OVMF too, the controller attested it, and
            // the customer's `relay attest` through the tunnel verified it (OVMF and systemd-stub measure into PCRs 0-7 and 11, stboot
            // into 12-14: they do not meet).
            Assert.Equal(("required", "required"), (summary.MeasuredBoot, summary.AttestationPolicy));
            Assert.True(relay.Attestation!.Verified, $"relay attest failed at {relay.Attestation.FailedStep}: {relay.Attestation.Detail}");
            Assert.Equal((summary.PackageSha256, (long?)1), (relay.Attestation.PackageSha256, relay.Attestation.Release));

            // --secure-boot implies uefi; the summary and the state say so.
            var firmware = summary.Firmware!;
            Assert.Equal(("uefi", true), (firmware.Type, firmware.SecureBoot));
            Assert.Equal(Qemu.QemuFirmware.DebianSecureBootCode, firmware.Code);
            Assert.Equal("STHostConfig-f401f2c1-b005-4be0-8cee-f2e5945bcbe7", firmware.HostConfig);
            Assert.True(File.Exists(firmware.Uki), firmware.Uki);
            Assert.True(File.Exists(firmware.PackageKernel), firmware.PackageKernel);
            foreach (string key in new[] { "PK", "KEK", "db" })
                Assert.True(File.Exists(Path.Combine(firmware.Keys!, key + ".crt")), key);
            var state = LabState.Load(dir)!;
            Assert.Equal(("uefi", true), (state.Firmware, state.SecureBoot));
            using (var stateJson = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, LabState.FileName))))
                Assert.Equal(("uefi", true), (stateJson.RootElement.GetProperty("firmware").GetString(), stateJson.RootElement.GetProperty("secure_boot").GetBoolean()));

            // What stboot saw: OVMF with Secure Boot on, Debian's kernel locked down, the host configuration from the EFI variable
            // (the image has none); the hand-over went to kexec_file_load, which took the db-signed package kernel.
            Assert.Equal(new RelayPlatform("uefi", "on", "integrity", "efivar:STHostConfig"), relay.Platform);
            string console = File.ReadAllText(relay.ConsoleLog);
            Assert.Contains("method=\"kexec_file_load (kexec_load: lockdown=integrity refuses it;", console, StringComparison.Ordinal);
            Assert.DoesNotContain("tabula-boot: FAILED", console, StringComparison.Ordinal);   // stboot's first round booted
            foreach (string line in console.Split('\n').Where(l => l.Contains("FAILED", StringComparison.Ordinal)))
                output.WriteLine("console: " + line.TrimEnd());
            Assert.Contains("ticket", relay.Stboot.Keys);

            // The next release, rolled: a reboot inside the running QEMU, through OVMF into the signed UKI again; stboot boots
            // release 2, whose kernel the lab signed with db as well.
            var upgrade = cli.Run(TimeSpan.FromMinutes(25), "lab", "upgrade", "--json", "--drain-seconds", "1", "--dir", dir);
            Assert.True(upgrade.Code == 0, $"lab upgrade exited {upgrade.Code}: {upgrade.Stderr}");
            output.WriteLine(upgrade.Stdout);
            var upgraded = JsonSerializer.Deserialize(upgrade.Stdout, LabJson.Default.LabUpgradeSummary)!;
            Assert.Equal(2, upgraded.Release);
            var rolled = Assert.Single(upgraded.Relays);
            Assert.Equal((relay.MachineId, upgraded.PackageSha256, true, true, "done"),
                (rolled.MachineId, rolled.BootedSha256, rolled.Handshake, rolled.Ping, rolled.Step));
            Assert.NotEqual(summary.PackageSha256, upgraded.PackageSha256);
            Assert.True(rolled.Attestation!.Verified, $"relay attest after the upgrade failed at {rolled.Attestation.FailedStep}: {rolled.Attestation.Detail}");
            Assert.Equal((upgraded.PackageSha256, (long?)2), (rolled.Attestation.PackageSha256, rolled.Attestation.Release));
            string after = File.ReadAllText(relay.ConsoleLog)[console.Length..];
            Assert.Contains("firmware=uefi secure_boot=on lockdown=integrity", after, StringComparison.Ordinal);
            Assert.Contains("host_config=efivar:STHostConfig", after, StringComparison.Ordinal);
            Assert.Contains($"ospkg_sha256={upgraded.PackageSha256}", after, StringComparison.Ordinal);
            Assert.Contains("method=\"kexec_file_load (kexec_load: lockdown=integrity refuses it;", after, StringComparison.Ordinal);
            Assert.DoesNotContain("tabula-boot: FAILED", after, StringComparison.Ordinal);
            foreach (string line in after.Split('\n').Where(l => l.Contains("FAILED", StringComparison.Ordinal)))
                output.WriteLine("console after the upgrade: " + line.TrimEnd());
            output.WriteLine($"power-on → kexec {relay.Timeline.KexecAt}s, → enrolled {relay.Timeline.EnrolledAt}s; after the reboot: kexec {rolled.KexecAt}s, enrolled {rolled.EnrolledAt}s");
        }
        finally
        {
            var down = cli.Run(TimeSpan.FromMinutes(2), "lab", "down", "--dir", dir);
            output.WriteLine(down.Stdout);
            Assert.Equal(0, down.Code);
        }
        Assert.False(File.Exists($"/run/netns/{ns}"), $"namespace {ns} is still there");
        Assert.Empty(LabCli.ProcessesNaming(dir + "/"));
        Assert.False(Directory.Exists(dir));
    }
}

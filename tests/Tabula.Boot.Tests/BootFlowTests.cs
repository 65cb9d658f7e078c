using System.Security.Cryptography;
using System.Text;
using Tabula.Boot.States;
using Tabula.Packaging;
using Tabula.Testing;
using Tabula.Testing.Packages;

namespace Tabula.Boot.Tests;

/// <summary>The whole boot, from mounts to the kexec system call, on the host with dry-run seams.</summary>
public sealed class BootFlowTests : IDisposable
{
    const string Cmdline = "console=ttyS0 panic=-1 quiet -- marker";
    const string DescriptorUrl = "https://10.0.0.1:8443/ospkg/os.json";
    const string ArchiveUrl = "https://10.0.0.1:8443/ospkg/os.zip";

    readonly BootHarness machine = new();
    readonly TestSigner root = SignedPackages.Root();
    readonly TestSigner[] signers;
    readonly byte[] kernel = RandomNumberGenerator.GetBytes(5000);
    readonly byte[] initramfs = RandomNumberGenerator.GetBytes(3001);   // odd length: the hand-over needs padding
    readonly byte[] archive;

    public BootFlowTests()
    {
        signers = [SignedPackages.Leaf(root), SignedPackages.Leaf(root), SignedPackages.Leaf(root)];
        archive = SignedPackages.Archive(kernel, initramfs, Cmdline);
        machine.TrustPolicy(2, "network", root);
        machine.HostConfig($$"""{"network_mode": "dhcp", "ospkg_pointer": "{{DescriptorUrl}}"}""");
    }

    public void Dispose() => machine.Dispose();

    string Hex => Convert.ToHexStringLower(SHA256.HashData(archive));

    [Fact]
    public void Valid_package_with_two_of_three_signers_is_kexeced_with_its_exact_cmdline_and_a_handover()
    {
        machine.Http.Serve(DescriptorUrl, SignedPackages.Descriptor(archive, "os.zip", signers[0], signers[2]))
                    .Serve(ArchiveUrl, archive);

        var outcome = Assert.IsType<BootOutcome.Kexecuted>(machine.Run());

        Assert.Equal(Hex, outcome.OsPackageSha256);
        Assert.True(machine.Kexec.Executed);
        Assert.Equal(Cmdline, machine.Kexec.CommandLine);
        Assert.Equal(kernel, machine.Kexec.Kernel);
        byte[] staged = machine.Kexec.Initramfs!;
        Assert.Equal(initramfs, staged[..initramfs.Length]);                  // signed bytes untouched
        int archiveStart = (initramfs.Length + 3) / 4 * 4;
        Assert.All(staged[initramfs.Length..archiveStart], b => Assert.Equal(0, b));
        Assert.Equal("070701"u8.ToArray(), staged[archiveStart..(archiveStart + 6)]);
        var handover = ExtractHandover(staged[archiveStart..]);
        Assert.Equal(Hex, handover.OsPackageSha256.Hex);
        Assert.Equal(FetchMethod.Network, handover.Source);
        Assert.Equal(DescriptorUrl, handover.DescriptorUrl);
        Assert.Equal(DescriptorUrl, HostConfig.Parse(handover.HostConfigJson).OsPackagePointers.Single());
        Assert.Equal([DescriptorUrl, ArchiveUrl], machine.Http.Requests);
        Assert.Contains(machine.ConsoleLines, l => l.Contains("tabula-boot: timeline") && l.Contains(" mount=") && l.Contains(" verify=") && l.Contains(" kexec-load="));
        Assert.DoesNotContain(machine.ConsoleLines, l => l.Contains("FAILED"));
    }

    [Fact]
    public void Tampered_archive_is_refused_with_a_typed_reason_never_kexeced_retried_then_restarted()
    {
        byte[] tampered = (byte[])archive.Clone();
        tampered[^100] ^= 1;
        machine.Http.Serve(DescriptorUrl, SignedPackages.Descriptor(archive, "os.zip", signers))
                    .Serve(ArchiveUrl, tampered);

        var outcome = Assert.IsType<BootOutcome.Restarted>(machine.Run());

        Assert.Equal(FailureReason.SignaturesRefused, outcome.Last.Reason);
        Assert.Equal(0, machine.Kexec.Loads);
        Assert.Equal(1, machine.Power.Restarts);
        Assert.Equal(3, outcome.FailedRounds);
        Assert.Equal(6, machine.Http.Requests.Count);                          // three rounds of descriptor + archive
        Assert.Equal(2, machine.Sleeps.Count(s => s == machine.Options.RetryWait));
        var failed = machine.ConsoleLines.Where(l => l.Contains("tabula-boot: FAILED")).ToList();
        Assert.Equal(3, failed.Count);
        Assert.All(failed, l => Assert.Contains($"stage=verify reason=SignaturesRefused url={DescriptorUrl}", l));
        Assert.Contains("3 found, 0 valid, 2 required", failed[0]);
        Assert.Contains("#0 SignatureInvalid, #1 SignatureInvalid, #2 SignatureInvalid", failed[0]);
        Assert.Contains("round=1/3 next=retry-in-6000ms", failed[0]);
        Assert.Contains("next=reboot", failed[2]);
    }

    [Theory]
    [InlineData("under-threshold", "1 found, 1 valid, 2 required", null)]
    [InlineData("other-root", "2 found, 0 valid, 2 required", "NotIssuedByRoot")]
    [InlineData("expired", "2 found, 0 valid, 2 required", "CertificateNotValidAtTime")]
    public void Package_without_enough_good_signers_is_refused_with_the_rejection_codes(string kind, string summary, string? code)
    {
        var other = SignedPackages.Root();
        var past = DateTimeOffset.UtcNow.AddDays(-10);
        TestSigner[] used = kind switch
        {
            "under-threshold" => [signers[0]],
            "other-root" => [SignedPackages.Leaf(other), SignedPackages.Leaf(other)],
            _ => [SignedPackages.Leaf(root, past, past.AddDays(3)), SignedPackages.Leaf(root, past, past.AddDays(3))],
        };
        machine.Options = machine.Options with { MaxRounds = 1 };
        machine.Http.Serve(DescriptorUrl, SignedPackages.Descriptor(archive, "os.zip", used)).Serve(ArchiveUrl, archive);

        var outcome = Assert.IsType<BootOutcome.Restarted>(machine.Run());

        Assert.Equal(FailureReason.SignaturesRefused, outcome.Last.Reason);
        Assert.Contains(summary, outcome.Last.Detail);
        if (code is not null)
            Assert.Contains(machine.ConsoleLines, l => l.Contains($"tabula-boot: signature") && l.Contains($"rejection={code}"));
        Assert.Equal(0, machine.Kexec.Loads);
    }

    [Fact]
    public void First_pointer_down_the_second_is_used_and_a_relative_os_pkg_url_resolves_against_it()
    {
        const string second = "http://10.0.0.2/mirror/os.json";
        machine.HostConfig($$"""{"network_mode": "dhcp", "ospkg_pointer": "{{DescriptorUrl}},{{second}}"}""");
        machine.Http.Serve(second, SignedPackages.Descriptor(archive, "pkgs/os.zip", signers[1], signers[2]))
                    .Serve("http://10.0.0.2/mirror/pkgs/os.zip", archive);

        Assert.IsType<BootOutcome.Kexecuted>(machine.Run());

        Assert.Equal([DescriptorUrl, DescriptorUrl, second, "http://10.0.0.2/mirror/pkgs/os.zip"], machine.Http.Requests);
        Assert.Contains(machine.ConsoleLines, l => l.Contains($"stage=fetch reason=ConnectionFailed url={DescriptorUrl}"));
        Assert.Contains(machine.ConsoleLines, l => l.Contains("tabula-boot: retry") && l.Contains($"descriptor url={DescriptorUrl} attempt=1/2"));
        Assert.Equal([machine.Options.AttemptWait], machine.Sleeps);
    }

    [Fact]
    public void Refused_package_from_the_first_pointer_makes_the_second_be_tried()
    {
        const string second = "http://10.0.0.2/os.json";
        machine.HostConfig($$"""{"network_mode": "dhcp", "ospkg_pointer": "{{DescriptorUrl}},{{second}}"}""");
        machine.Http.Serve(DescriptorUrl, SignedPackages.Descriptor(archive, "os.zip", signers[0])).Serve(ArchiveUrl, archive)
                    .Serve(second, SignedPackages.Descriptor(archive, "os.zip", signers)).Serve("http://10.0.0.2/os.zip", archive);

        Assert.IsType<BootOutcome.Kexecuted>(machine.Run());
        Assert.Contains(machine.ConsoleLines, l => l.Contains("FAILED") && l.Contains("stage=verify reason=SignaturesRefused") && !l.Contains("round="));
    }

    [Fact]
    public void Server_down_at_first_then_up_boots_in_a_later_round()
    {
        int descriptorCalls = 0;
        byte[] descriptor = SignedPackages.Descriptor(archive, "os.zip", signers);
        machine.Http.Answer(DescriptorUrl, () => ++descriptorCalls <= 2
                ? throw new HttpRequestException(HttpRequestError.ConnectionError, "Connection refused (fake)")
                : new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = new ByteArrayContent(descriptor) })
            .Serve(ArchiveUrl, archive);

        Assert.IsType<BootOutcome.Kexecuted>(machine.Run());
        Assert.Contains(machine.ConsoleLines, l => l.Contains("FAILED") && l.Contains("stage=fetch reason=ConnectionFailed") && l.Contains("round=1/3"));
    }

    [Fact]
    public void Oversized_archive_is_refused_by_content_length_without_retrying()
    {
        machine.Options = machine.Options with { MaxRounds = 1 };
        machine.Http.Serve(DescriptorUrl, SignedPackages.Descriptor(archive, "os.zip", signers))
            .Answer(ArchiveUrl, () =>
            {
                var content = new ByteArrayContent([1]);
                content.Headers.ContentLength = BootLimits.MaxArchiveBytes + 1;
                return new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = content };
            });

        var outcome = Assert.IsType<BootOutcome.Restarted>(machine.Run());
        Assert.Equal(FailureReason.TooLarge, outcome.Last.Reason);
        Assert.Equal(2, machine.Http.Requests.Count);
    }

    [Fact]
    public void Http_error_status_is_reported_with_the_status_and_credentials_never_printed()
    {
        machine.HostConfig("""{"network_mode": "dhcp", "ospkg_pointer": "http://user:secret@10.0.0.3/os.json"}""");
        machine.Options = machine.Options with { MaxRounds = 1 };
        machine.Http.Answer("http://10.0.0.3/os.json", () => new HttpResponseMessage(System.Net.HttpStatusCode.NotFound));

        var outcome = Assert.IsType<BootOutcome.Restarted>(machine.Run());
        Assert.Equal(FailureReason.HttpStatus, outcome.Last.Reason);
        Assert.Contains("HTTP 404", outcome.Last.Detail);
        Assert.DoesNotContain("secret", machine.Console.ToString());
    }

    [Fact]
    public void Initramfs_fetch_method_boots_the_embedded_package()
    {
        machine.TrustPolicy(2, "initramfs", root);
        machine.HostConfig("""{"network_mode": "dhcp", "ospkg_pointer": "ospkg.json"}""");
        machine.WriteFile("/ospkg/ospkg.json", SignedPackages.Descriptor(archive, "", signers[0], signers[1]))
               .WriteFile("/ospkg/ospkg.zip", archive);

        var outcome = Assert.IsType<BootOutcome.Kexecuted>(machine.Run());

        Assert.Equal(Hex, outcome.OsPackageSha256);
        Assert.Equal(0, machine.Network.Calls);
        Assert.Empty(machine.Http.Requests);
        var handover = ExtractHandover(machine.Kexec.Initramfs![((initramfs.Length + 3) / 4 * 4)..]);
        Assert.Equal(FetchMethod.Initramfs, handover.Source);
        Assert.Null(handover.DescriptorUrl);
    }

    [Fact]
    public void Host_config_comes_from_the_STHostConfig_efi_variable_when_the_file_is_missing()
    {
        File.Delete(machine.PathOf("/etc/host_configuration.json"));
        byte[] json = Encoding.UTF8.GetBytes($$"""{"network_mode": "dhcp", "ospkg_pointer": "{{DescriptorUrl}}"}""");
        machine.WriteFile("/sys/firmware/efi/efivars/STHostConfig-f401f2c1-b005-4be0-8cee-f2e5945bcbe7", [7, 0, 0, 0, .. json]);
        machine.Http.Serve(DescriptorUrl, SignedPackages.Descriptor(archive, "os.zip", signers)).Serve(ArchiveUrl, archive);

        Assert.IsType<BootOutcome.Kexecuted>(machine.Run());
        Assert.Contains(machine.ConsoleLines, l => l.Contains("host_config=efivar:STHostConfig"));
    }

    [Fact]
    public void Missing_host_configuration_is_a_typed_failure_and_ends_in_a_restart()
    {
        File.Delete(machine.PathOf("/etc/host_configuration.json"));
        var outcome = Assert.IsType<BootOutcome.Restarted>(machine.Run());
        Assert.Equal(FailureReason.HostConfigMissing, outcome.Last.Reason);
        Assert.Equal(1, machine.Power.Restarts);
    }

    [Fact]
    public void Modules_the_devices_ask_for_are_loaded_dependencies_first_and_the_rest_stay_in_the_image()
    {
        machine.WriteFile("/proc/sys/kernel/osrelease", SignedPackages.Utf8("6.1.0-test\n"))
               .WriteFile("/lib/modules/6.1.0-test/modules.dep", SignedPackages.Utf8("k/b.ko:\nk/a.ko: k/b.ko\nk/nic.ko: k/a.ko\nk/other.ko:\n"))
               .WriteFile("/lib/modules/6.1.0-test/modules.alias", SignedPackages.Utf8(
                   "alias pci:v00001AF4d*sv*sd*bc*sc*i* nic\nalias pci:v00008086d000010D3sv*sd*bc*sc*i* other\n"))
               .WriteFile("/sys/bus/pci/devices/0000:00:03.0/modalias", SignedPackages.Utf8("pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00\n"));
        foreach (string module in new[] { "a", "b", "nic", "other" })
            machine.WriteFile($"/lib/modules/6.1.0-test/k/{module}.ko", [1]);
        machine.Http.Serve(DescriptorUrl, SignedPackages.Descriptor(archive, "os.zip", signers)).Serve(ArchiveUrl, archive);

        Assert.IsType<BootOutcome.Kexecuted>(machine.Run());
        // a and b have no device alias (loaded as asked for by the image's builder), nic by its PCI device; other not.
        Assert.Equal(["b.ko", "a.ko", "nic.ko"], machine.LoadedModules.Select(Path.GetFileName));
        Assert.Contains(machine.ConsoleLines, l => l.StartsWith("tabula-boot: stage:modules ", StringComparison.Ordinal) && l.EndsWith(" loaded=3 already=0 failed=0", StringComparison.Ordinal));
        Assert.Contains(machine.ConsoleLines, l => l.StartsWith("tabula-boot: note:modules ", StringComparison.Ordinal) && l.Contains("matched=nic", StringComparison.Ordinal));
    }

    /// <summary>Reads the appended newc archive (mode 0600 file) and parses the hand-over with its one reader.</summary>
    static HandoverRecord ExtractHandover(byte[] cpio)
    {
        var entry = Assert.Single(NewcReader.Read(cpio), e => e.Name == InitramfsLayout.Handover);
        Assert.Equal(0x8180u, entry.Mode);                                    // regular file 0600
        return HandoverRecord.Parse(entry.Data);
    }
}

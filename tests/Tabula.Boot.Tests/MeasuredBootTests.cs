using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Tabula.Boot.States;
using Tabula.Packaging;
using Tabula.Qemu;
using Tabula.Testing;
using Tabula.Testing.Packages;
using Tabula.Tpm.Measurements;

namespace Tabula.Boot.Tests;

/// <summary>
/// Measured boot (issue 19): the whole machine on the host up to the kexec call, measuring into a real swtpm
/// (Tabula.Qemu.Swtpm, started on loopback); tpm2-tools reads the PCRs independently and they must be what the handed-over event log
/// replays to.
/// </summary>
public sealed partial class MeasuredBootTests : IDisposable
{
    const string Cmdline = "console=ttyS0 panic=-1 quiet -- marker";
    const string DescriptorUrl = "https://10.0.0.1:8443/ospkg/os.json";
    const string ArchiveUrl = "https://10.0.0.1:8443/ospkg/os.zip";

    readonly BootHarness machine = new();
    readonly TestSigner root = SignedPackages.Root();
    readonly TestSigner[] signers;
    readonly byte[] archive;
    readonly byte[] descriptor;
    readonly byte[] identityKey = RandomNumberGenerator.GetBytes(32);

    public MeasuredBootTests()
    {
        signers = [SignedPackages.Leaf(root), SignedPackages.Leaf(root)];
        archive = SignedPackages.Archive(RandomNumberGenerator.GetBytes(3000), RandomNumberGenerator.GetBytes(2001), Cmdline);
        descriptor = SignedPackages.Descriptor(archive, "os.zip", signers);
        machine.HostConfig($$$"""{"network_mode": "dhcp", "ospkg_pointer": "{{{DescriptorUrl}}}", "tabula_relay": {"identity_key": "{{{Convert.ToBase64String(identityKey)}}}", "enrollment_token": "tet_secret_token"}}""");
        machine.Http.Serve(DescriptorUrl, descriptor).Serve(ArchiveUrl, archive);
        machine.Options = machine.Options with { MaxRounds = 2 };
    }

    public void Dispose() => machine.Dispose();

    void Policy(MeasuredBootMode? mode)
    {
        string directory = machine.PathOf("/etc/trust_policy");
        new TrustPolicyFolder(new TrustPolicy(2, FetchMethod.Network) { MeasuredBoot = mode }, [root.Certificate], null, null).Write(directory);
    }

    static (HandoverRecord Record, byte[]? EventLog) HandOver(byte[] staged, int initramfsLength)
    {
        var entries = NewcReader.Read(staged[((initramfsLength + 3) / 4 * 4)..]);
        var record = HandoverRecord.Parse(entries.Single(e => e.Name == InitramfsLayout.Handover).Data);
        return (record, entries.SingleOrDefault(e => e.Name == InitramfsLayout.EventLog)?.Data);
    }

    [ToolsFact("swtpm", "tpm2_pcrread")]
    public void Required_measured_boot_extends_pcrs_12_13_14_and_the_handed_over_log_replays_to_what_tpm2_tools_reads()
    {
        Policy(MeasuredBootMode.Required);
        using var swtpm = Swtpm.StartServer();
        machine.OpenTpm = swtpm.Open;

        var outcome = Assert.IsType<BootOutcome.Kexecuted>(machine.Run());

        var (record, logBytes) = HandOver(machine.Kexec.Initramfs!, 2001 + 0);
        Assert.NotNull(logBytes);
        Assert.True(record.Measurement!.Measured);
        Assert.Null(record.Measurement.Detail);
        Assert.True(record.Measurement.Matches(logBytes));
        var log = EventLog.Parse(logBytes);
        Assert.Equal([StbootEvent.OspkgArchive, StbootEvent.OspkgManifest, StbootEvent.SecurityConfig, StbootEvent.SigningRoot,
            StbootEvent.HttpsRoot, StbootEvent.PlatformSecurity, StbootEvent.UxIdentity, StbootEvent.HostConfig], log.Events.Select(e => e.Type));
        Assert.All(log.Events, e => Assert.True(StbootEvents.IsStbootEvent(e), $"{e.Type} in PCR {e.Pcr}"));   // what the verifier accepts in PCRs 12-14
        Assert.Equal(Convert.FromHexString(outcome.OsPackageSha256), log.Events[0].Sha256);
        Assert.Equal("os.zip", Encoding.UTF8.GetString(log.Events[0].Data));
        Assert.Equal(descriptor, log.Events[1].Data);
        Assert.Equal(File.ReadAllBytes(machine.PathOf("/etc/trust_policy/trust_policy.json")), log.Events[2].Data);
        Assert.Equal(root.Certificate.Der, log.Events[3].Data);
        Assert.Empty(log.Events[4].Data);
        Assert.Equal(13, log.Events[5].Pcr);                                        // the platform, as handed over (host: BIOS, no securityfs)
        Assert.Equal(record.Platform!.ToMeasuredJson(), log.Events[5].Data);
        Assert.Equal("""{"firmware":"bios","secure_boot":null,"lockdown":null}""", Encoding.UTF8.GetString(log.Events[5].Data));
        Assert.Equal(MachineIdentity.MachineId(Tabula.Packaging.Crypto.Ed25519.PublicKeyOf(identityKey)), Encoding.ASCII.GetString(log.Events[6].Data));
        string host = Encoding.UTF8.GetString(log.Events[7].Data);
        Assert.DoesNotContain("tet_secret_token", host);
        Assert.DoesNotContain(Convert.ToBase64String(identityKey), host);
        Assert.DoesNotContain("tabula_relay", host);

        // The independent reader: tpm2-tools over swtpm's socket.
        var replay = log.Replay();
        var read = ReadPcrs(swtpm);
        Assert.Equal([12, 13, 14], replay.Keys);
        foreach (int pcr in (int[])[12, 13, 14])
            Assert.Equal(Convert.ToHexStringLower(replay[pcr]), read[pcr]);
        Assert.Contains(machine.ConsoleLines, l => l.Contains("tabula-boot: stage:measure") && l.Contains("events=8") && l.Contains("pcr12=" + read[12]));
        Assert.Contains(machine.ConsoleLines, l => l.Contains("tabula-boot: timeline") && l.Contains(" measure="));
    }

    [Fact]
    public void Required_measured_boot_without_a_tpm_fails_each_round_with_MeasurementFailed_and_never_kexecs()
    {
        Policy(MeasuredBootMode.Required);
        var outcome = Assert.IsType<BootOutcome.Restarted>(machine.Run());
        Assert.Equal(FailureReason.MeasurementFailed, outcome.Last.Reason);
        Assert.Contains("no TPM", outcome.Last.Detail);
        Assert.Equal(0, machine.Kexec.Loads);
        Assert.Equal(2, machine.ConsoleLines.Count(l => l.Contains("tabula-boot: FAILED") && l.Contains("stage=measure reason=MeasurementFailed")));
        Assert.Equal(1, machine.Power.Restarts);
    }

    [Theory, InlineData(MeasuredBootMode.Optional), InlineData(null)]
    public void Without_a_tpm_an_optional_or_absent_policy_boots_unmeasured_and_the_handover_says_so(MeasuredBootMode? mode)
    {
        Policy(mode);
        Assert.IsType<BootOutcome.Kexecuted>(machine.Run());
        var (record, logBytes) = HandOver(machine.Kexec.Initramfs!, 2001);
        Assert.Null(logBytes);
        Assert.False(record.Measurement!.Measured);
        Assert.Contains("no TPM", record.Measurement.Detail);
        Assert.Null(record.Measurement.EventLogSha256);
        Assert.Contains(machine.ConsoleLines, l => l.Contains("tabula-boot: measure") && l.Contains("UNMEASURED (policy optional)"));
    }

    static Dictionary<int, string> ReadPcrs(Swtpm swtpm) =>
        PcrLine().Matches(swtpm.Tools("tpm2_pcrread", "sha256:12,13,14"))
            .ToDictionary(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), m => m.Groups[2].Value.ToLowerInvariant());

    [GeneratedRegex(@"^\s*(\d+)\s*:\s*0x([0-9A-Fa-f]{64})\s*$", RegexOptions.Multiline)]
    private static partial Regex PcrLine();
}

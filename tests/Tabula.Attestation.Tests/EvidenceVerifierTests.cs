using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Tabula.Fleet.Protocol;
using Tabula.Qemu;
using Tabula.Tpm;
using Tabula.Tpm.Measurements;

namespace Tabula.Attestation.Tests;

/// <summary>
/// The verifier against evidence from a real swtpm (tpm2-tools as the relay's side): genuine evidence passes every step, and
/// each attack of issue 19 fails at the step that names it.
/// </summary>
public sealed class EvidenceVerifierTests : IDisposable
{
    readonly string dir = $"/var/tmp/tabula-attest-verify-{Environment.ProcessId}-{RandomNumberGenerator.GetHexString(8, lowercase: true)}";
    readonly List<IDisposable> owned = [];
    static readonly byte[] Archive = SHA256.HashData("the relay package"u8);
    static readonly byte[] Descriptor = """{"version":1,"os_pkg_url":"http://p/ospkg.zip","certificates":[],"signatures":[]}"""u8.ToArray();

    public void Dispose()
    {
        foreach (var d in owned) d.Dispose();
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    TpmManufacturer Manufacturer(string name = "ca") => TpmManufacturer.OpenOrCreate(Path.Combine(dir, name));

    ToolsRelayTpm Tpm(TpmManufacturer manufacturer, string name = "relay")
    {
        var tpm = new ToolsRelayTpm(Path.Combine(dir, name), manufacturer);
        owned.Add(tpm);
        return tpm;
    }

    /// <summary>A relay's boot: stboot's measurements, then its WireGuard key.</summary>
    static void Boot(ToolsRelayTpm tpm, byte[] wireGuardKey, bool stboot = true)
    {
        if (stboot) tpm.MeasureStboot(Archive, Descriptor, """{"version":1}"""u8.ToArray(), """{"version":1,"network_mode":"dhcp"}"""u8.ToArray());
        tpm.Measure(14, StbootEvent.WireGuardKey, wireGuardKey);
    }

    static (byte[] Secret, byte[]? Answer) Challenge(ToolsRelayTpm ekTpm, ToolsRelayTpm answering, byte[] akName)
    {
        byte[] secret = RandomNumberGenerator.GetBytes(AttestationKey.SecretBytes);
        using var ek = X509CertificateLoader.LoadCertificate(ekTpm.EkCertificate);
        var (blob, encrypted) = AttestationKey.Challenge(ek, akName, secret);
        return (secret, answering.Activate(blob, encrypted));
    }

    static Func<TpmPublic, X509Certificate2, byte[], StepResult> Expect(byte[] secret) => (ak, ek, given) =>
        CryptographicOperations.FixedTimeEquals(secret, given)
            ? StepResult.Pass(AttestationStep.AkActivation, "answered")
            : StepResult.Fail(AttestationStep.AkActivation, "the TPM did not answer the challenge for this AK");

    static StepResult Allowed(MeasuredPackage p) => p.ArchiveSha256 == Convert.ToHexStringLower(Archive)
        ? StepResult.Pass(AttestationStep.Package, "allowed") : StepResult.Fail(AttestationStep.Package, $"package {p.ArchiveSha256} is not allowed");

    static VerifierExpectations Expectations(TpmManufacturer roots, byte[] nonce, byte[] key, byte[] secret,
        Func<MeasuredPackage, StepResult>? package = null, byte[]? expectedKey = null) =>
        new(EkCertificateCheck.ReadRoots(roots.CertificatePem), DateTimeOffset.UtcNow, nonce, key, expectedKey ?? key, Expect(secret), package ?? Allowed);

    static Evidence Evidence(ToolsRelayTpm tpm, byte[] answer, byte[] nonce, byte[] key, byte[]? log = null, byte[]? akPublic = null,
        ToolsRelayTpm? quoting = null)
    {
        var (attest, signature) = (quoting ?? tpm).Quote(AttestationBinding.QualifyingData(nonce, key));
        return new Evidence(tpm.EkCertificate, akPublic ?? tpm.AkPublic, answer, attest, signature, log ?? tpm.EventLog());
    }

    static void AssertFailsAt(string step, AttestationReport report)
    {
        Assert.False(report.Verified);
        Assert.Equal(step, report.Failed?.Name);
        Assert.Equal(step, report.Steps[^1].Name);
        Assert.All(report.Steps.SkipLast(1), s => Assert.True(s.Ok, s.Name + ": " + s.Detail));
    }

    const string Tools = "swtpm";

    [ToolsFact(Tools, "swtpm_setup", "swtpm_localca", "tpm2_quote", "tpm2_createak", "tpm2_activatecredential")]
    public void Genuine_evidence_passes_every_step_and_each_attack_fails_at_its_step()
    {
        var ca = Manufacturer();
        var tpm = Tpm(ca);
        byte[] key = RandomNumberGenerator.GetBytes(32), nonce = RandomNumberGenerator.GetBytes(32);
        Boot(tpm, key);
        var (secret, answer) = Challenge(tpm, tpm, tpm.AkName);
        Assert.True(answer is not null, tpm.LastActivationError);
        Assert.Equal(secret, answer);   // tpm2_activatecredential recovers what AttestationKey.Challenge (Tabula.Tpm's Credential.Make) encrypted: the C# side is the TPM's

        var genuine = Evidence(tpm, answer!, nonce, key);
        var report = EvidenceVerifier.Verify(genuine, Expectations(ca, nonce, key, secret));
        Assert.True(report.Verified, string.Join("\n", report.Steps.Select(s => $"{s.Name} {s.Ok} {s.Detail}")));
        Assert.Equal(AttestationStep.All, report.Steps.Select(s => s.Name));
        Assert.Equal(Convert.ToHexStringLower(Archive), report.Package!.ArchiveSha256);
        Assert.Equal(Descriptor, report.Package.Descriptor);

        // The package digest is not allowed.
        AssertFailsAt(AttestationStep.Package, EvidenceVerifier.Verify(genuine, Expectations(ca, nonce, key, secret,
            p => StepResult.Fail(AttestationStep.Package, "not allowed"))));

        // A quote replayed with an old nonce: the verifier's new nonce is not in it.
        AssertFailsAt(AttestationStep.Quote, EvidenceVerifier.Verify(genuine, Expectations(ca, RandomNumberGenerator.GetBytes(32), key, secret)));

        // An EK certificate from an unknown CA.
        AssertFailsAt(AttestationStep.EkCertificate, EvidenceVerifier.Verify(genuine,
            Expectations(Manufacturer("unknown-ca"), nonce, key, secret)));

        // A tampered event log: another package digest in the archive event (its data and digest both changed).
        var tampered = EventLog.Parse(genuine.EventLog).Events
            .Select(e => e.Type == StbootEvent.OspkgArchive ? new MeasuredEvent(e.Pcr, e.Type, SHA256.HashData("another package"u8), e.Data) : e);
        AssertFailsAt(AttestationStep.EventLog, EvidenceVerifier.Verify(genuine with { EventLog = EventLog.Of(tampered).ToBytes() },
            Expectations(ca, nonce, key, secret)));

        // Evidence for another WireGuard key: genuine for the key it measured, but the customer talks to another.
        AssertFailsAt(AttestationStep.KeyBinding, EvidenceVerifier.Verify(genuine,
            Expectations(ca, nonce, key, secret, expectedKey: RandomNumberGenerator.GetBytes(32))));

        // A quote for another key than the one claimed fails at the quote.
        AssertFailsAt(AttestationStep.Quote, EvidenceVerifier.Verify(genuine,
            Expectations(ca, nonce, RandomNumberGenerator.GetBytes(32), secret)));
    }

    [ToolsFact(Tools, "swtpm_setup", "swtpm_localca", "tpm2_quote", "tpm2_createak", "tpm2_activatecredential")]
    public void An_ak_from_another_tpm_fails_activation_and_a_boot_without_stboot_fails_measured_boot()
    {
        var ca = Manufacturer();
        var relay = Tpm(ca, "relay");
        var other = Tpm(ca, "other");
        byte[] key = RandomNumberGenerator.GetBytes(32), nonce = RandomNumberGenerator.GetBytes(32);
        Boot(other, key);

        // The relay presents its genuine EK certificate with an AK (and quote) from another TPM. The verifier's challenge is
        // made with the relay's EK for that AK's name: neither TPM can answer it (the other TPM lacks the relay's EK).
        var (secret, answer) = Challenge(relay, other, other.AkName);
        Assert.Null(answer);
        var forged = Evidence(relay, new byte[AttestationKey.SecretBytes], nonce, key, log: other.EventLog(), akPublic: other.AkPublic, quoting: other);
        AssertFailsAt(AttestationStep.AkActivation, EvidenceVerifier.Verify(forged, Expectations(ca, nonce, key, secret)));

        // What the relay agent and its attestation service send when their TPM refuses the challenge: an empty answer. It is
        // evidence that fails at ak-activation, not malformed evidence (which the controller would report at ek-certificate).
        var refused = Tabula.Attestation.Evidence.Decode(forged.ToWire() with { ActivationSecret = "" }, out string? why);
        Assert.True(refused is not null, why);
        var refusedReport = EvidenceVerifier.Verify(refused!, Expectations(ca, nonce, key, secret));
        AssertFailsAt(AttestationStep.AkActivation, refusedReport);
        Assert.Contains("no answer", refusedReport.Failed!.Detail);

        // The package kexec'd directly: no stboot measurements, only the relay's own key in PCR 14.
        Boot(relay, key, stboot: false);
        var (secret2, answer2) = Challenge(relay, relay, relay.AkName);
        var bare = Evidence(relay, answer2!, nonce, key);
        AssertFailsAt(AttestationStep.MeasuredBoot, EvidenceVerifier.Verify(bare, Expectations(ca, nonce, key, secret2)));
    }

    static readonly byte[] OtherArchive = SHA256.HashData("the package whose kexec failed"u8);
    static readonly byte[] OtherDescriptor = """{"version":1,"os_pkg_url":"http://p/old.zip","certificates":[],"signatures":[]}"""u8.ToArray();

    static AttestationReport VerifyGenuine(TpmManufacturer ca, ToolsRelayTpm tpm, byte[] key, bool requireSecureBoot = false)
    {
        byte[] nonce = RandomNumberGenerator.GetBytes(32);
        var (secret, answer) = Challenge(tpm, tpm, tpm.AkName);
        Assert.True(answer is not null, tpm.LastActivationError);
        return EvidenceVerifier.Verify(Evidence(tpm, answer!, nonce, key),
            Expectations(ca, nonce, key, secret) with { RequireSecureBoot = requireSecureBoot });
    }

    static string Steps(AttestationReport report) => string.Join("\n", report.Steps.Select(s => $"{s.Name} {s.Ok} {s.Detail}"));

    [ToolsFact(Tools, "swtpm_setup", "swtpm_localca", "tpm2_quote", "tpm2_createak", "tpm2_activatecredential")]
    public void A_boot_whose_first_kexec_failed_attests_the_last_package_and_shows_the_measured_platform()
    {
        var ca = Manufacturer();
        var tpm = Tpm(ca);
        byte[] key = RandomNumberGenerator.GetBytes(32);
        // stboot's first round: another package measured (and its configuration, once per boot, with the platform), then
        // the kexec load failed; the second round measured the package it booted. The log keeps both, as the PCRs do.
        tpm.MeasureStboot(OtherArchive, OtherDescriptor, """{"version":1}"""u8.ToArray(), """{"version":1,"network_mode":"dhcp"}"""u8.ToArray());
        tpm.Measure(13, StbootEvent.PlatformSecurity, """{"firmware":"uefi","secure_boot":false,"lockdown":"integrity"}"""u8.ToArray());
        tpm.Extend(12, StbootEvent.OspkgArchive, Archive, "ospkg.zip"u8.ToArray());
        tpm.Measure(12, StbootEvent.OspkgManifest, Descriptor);
        tpm.Measure(14, StbootEvent.WireGuardKey, key);

        var report = VerifyGenuine(ca, tpm, key);
        Assert.True(report.Verified, Steps(report));
        Assert.Equal(Convert.ToHexStringLower(Archive), report.Package!.ArchiveSha256);
        Assert.Equal(Descriptor, report.Package.Descriptor);
        Assert.Equal(new Tabula.Packaging.HandoverPlatform(Tabula.Packaging.PlatformFirmware.Uefi, false, Tabula.Packaging.KernelLockdown.Integrity), report.Platform);
        Assert.Contains("Secure Boot off", report.Steps.Single(s => s.Name == AttestationStep.MeasuredBoot).Detail);

        // A customer who requires Secure Boot refuses this relay at measured-boot.
        var strict = VerifyGenuine(ca, tpm, key, requireSecureBoot: true);
        AssertFailsAt(AttestationStep.MeasuredBoot, strict);
        Assert.Contains("Secure Boot is required", strict.Failed!.Detail);
    }

    [ToolsFact(Tools, "swtpm_setup", "swtpm_localca", "tpm2_quote", "tpm2_createak", "tpm2_activatecredential")]
    public void An_event_in_stboots_pcrs_that_stboot_does_not_write_fails_measured_boot_though_the_log_replays()
    {
        var ca = Manufacturer();
        byte[] key = RandomNumberGenerator.GetBytes(32);

        // systemd-stub measured a command line passed in the load options (EV_IPL, 0x0000000d) into PCR 12 before stboot ran.
        var stub = Tpm(ca, "stub");
        stub.Measure(12, (StbootEvent)0x0000000d, System.Text.Encoding.Unicode.GetBytes("console=ttyS0 init=/bin/sh"));
        Boot(stub, key);
        var report = VerifyGenuine(ca, stub, key);
        AssertFailsAt(AttestationStep.MeasuredBoot, report);
        Assert.Contains("PCR 12 holds an event stboot does not write", report.Failed!.Detail);

        // A PlatformSecurity event that does not parse is refused, naming it.
        var platform = Tpm(ca, "platform");
        platform.Measure(13, StbootEvent.PlatformSecurity, """{"firmware":"arm","secure_boot":true,"lockdown":null}"""u8.ToArray());
        Boot(platform, key);
        var bad = VerifyGenuine(ca, platform, key);
        AssertFailsAt(AttestationStep.MeasuredBoot, bad);
        Assert.Contains("PlatformSecurity event does not parse", bad.Failed!.Detail);
    }
}

using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Tabula.Fleet.Protocol;
using Tabula.Packaging;
using Tabula.Tpm;
using Tabula.Tpm.Measurements;

namespace Tabula.Attestation;

/// <summary>A relay's evidence decoded from the wire (<see cref="AttestationEvidence"/>).</summary>
public sealed record Evidence(byte[] EkCertificate, byte[] AkPublic, byte[] ActivationSecret, byte[] Quote, byte[] QuoteSignature, byte[] EventLog)
{
    /// <summary>Largest field accepted from the wire, decoded (the event log is the largest: stboot's is a few KiB).</summary>
    public const int MaxFieldBytes = 1 << 20;

    /// <summary>Decodes the base64 fields; null with the reason when one is missing or not base64. An empty or missing
    /// <c>activation_secret</c> decodes to no bytes (the TPM refused the challenge; the verifier fails it at ak-activation).</summary>
    public static Evidence? Decode(AttestationEvidence wire, out string? why)
    {
        why = null;
        try
        {
            // An empty (or absent) activation_secret is the relay saying its TPM did not answer the challenge: evidence
            // that fails at ak-activation, not malformed evidence.
            return new Evidence(B(wire.EkCertificate, "ek_certificate"), B(wire.AkPublic, "ak_public"),
                string.IsNullOrEmpty(wire.ActivationSecret) ? [] : B(wire.ActivationSecret, "activation_secret"),
                B(wire.Quote, "quote"), B(wire.QuoteSignature, "quote_signature"), B(wire.EventLog, "event_log"));
        }
        catch (FormatException e)
        {
            why = e.Message;
            return null;
        }
    }

    static byte[] B(string? text, string field)
    {
        if (string.IsNullOrEmpty(text)) throw new FormatException($"{field} is missing");
        if (text.Length > 4 * (MaxFieldBytes / 3 + 1)) throw new FormatException($"{field} is too large");
        try { return Convert.FromBase64String(text); }
        catch (FormatException) { throw new FormatException($"{field} is not base64"); }
    }

    /// <summary>The wire form.</summary>
    public AttestationEvidence ToWire() => new(Convert.ToBase64String(EkCertificate), Convert.ToBase64String(AkPublic),
        Convert.ToBase64String(ActivationSecret), Convert.ToBase64String(Quote), Convert.ToBase64String(QuoteSignature), Convert.ToBase64String(EventLog));
}

/// <summary>What stboot measured about the package it booted, read from a log that replayed to the quote.</summary>
/// <param name="ArchiveSha256">The OS package archive's SHA-256 (hex), as stboot verified it.</param>
/// <param name="Descriptor">The descriptor bytes stboot verified (null if the log has none).</param>
/// <param name="HostConfig">The host configuration, secrets excluded, as measured (null if none).</param>
public sealed record MeasuredPackage(string ArchiveSha256, byte[]? Descriptor, byte[]? HostConfig)
{
    /// <summary>The TLS roots stboot trusted for the provisioning server (the PCR 13 HTTPSRoot event's data: DER,
    /// concatenated; empty when the trust policy has none), or null when the log has no such event.</summary>
    public byte[]? HttpsRoots { get; init; }
}

/// <summary>What stboot measured about this boot (<see cref="StbootMeasurements.Read"/>): the package it handed over,
/// and the platform it ran on (null when the log has no PlatformSecurity event: an stboot before issue 20).</summary>
public sealed record StbootMeasurements(MeasuredPackage Package, HandoverPlatform? Platform)
{
    /// <summary>
    /// Reads stboot's measurements from a log, or says why it holds none a verifier can take (the <c>measured-boot</c>
    /// step's detail). The rules (docs/attestation.md "measured-boot"): every event in PCRs 12–14 is one stboot (or the
    /// relay) writes, in its PCR, so nothing else measured into them (systemd-stub's command line or credentials, another
    /// loader) is replayed as if it were stboot's; the booted package is the LAST OspkgArchive event with the first
    /// OspkgManifest (descriptor) after it (a round whose kexec failed leaves its events before it); the trust policy is
    /// there; the PlatformSecurity event, at most one, parses (<see cref="HandoverPlatform.ParseMeasured"/>). It does not
    /// replay: a caller trusts the result only for a log that replayed to a verified quote.
    /// </summary>
    public static StbootMeasurements? Read(EventLog log, out string? failure)
    {
        failure = null;
        var events = log.Events;
        for (int i = 0; i < events.Count; i++)
        {
            var e = events[i];
            if (e.Pcr is >= StbootPcr.Detail and <= StbootPcr.Identity && !StbootEvents.IsStbootEvent(e))
            {
                failure = $"PCR {e.Pcr} holds an event stboot does not write (event {i}, type 0x{(uint)e.Type:x8}): something else "
                    + "measured into stboot's PCRs (a boot loader's command line or credentials, systemd-stub), refused rather than replayed";
                return null;
            }
        }
        int archiveAt = -1;
        for (int i = events.Count - 1; i >= 0 && archiveAt < 0; i--)
            if (events[i].Type == StbootEvent.OspkgArchive) archiveAt = i;
        var descriptor = archiveAt < 0 ? null : events.Skip(archiveAt + 1).FirstOrDefault(e => e.Type == StbootEvent.OspkgManifest);
        bool policy = events.Any(e => e.Type == StbootEvent.SecurityConfig);
        if (archiveAt < 0 || descriptor is null || !policy)
        {
            failure = $"the log lacks stboot's measurements (package archive {(archiveAt < 0 ? "no" : "yes")}, its descriptor "
                + $"{(descriptor is null ? "no" : "yes")}, trust policy {(policy ? "yes" : "no")}): not booted by stboot";
            return null;
        }
        if (!descriptor.DigestIsOfData)
        {
            failure = "the descriptor event's data is not what was measured";
            return null;
        }
        var platforms = events.Where(e => e.Type == StbootEvent.PlatformSecurity).ToList();
        HandoverPlatform? platform = null;
        if (platforms.Count > 1)
        {
            failure = $"the log holds {platforms.Count} PlatformSecurity events (stboot measures one per boot)";
            return null;
        }
        if (platforms.Count == 1)
        {
            if (!platforms[0].DigestIsOfData)
            {
                failure = "the PlatformSecurity event's data is not what was measured";
                return null;
            }
            try { platform = HandoverPlatform.ParseMeasured(platforms[0].Data); }
            catch (PackageFormatException e)
            {
                failure = "the PlatformSecurity event does not parse: " + e.Message;
                return null;
            }
        }
        var hostConfig = events.LastOrDefault(e => e.Type == StbootEvent.HostConfig);
        var httpsRoots = events.LastOrDefault(e => e.Type == StbootEvent.HttpsRoot);
        var package = new MeasuredPackage(Convert.ToHexStringLower(events[archiveAt].Sha256), descriptor.Data,
            hostConfig is { DigestIsOfData: true } ? hostConfig.Data : null)
        {
            HttpsRoots = httpsRoots is { DigestIsOfData: true } ? httpsRoots.Data : null,
        };
        return new StbootMeasurements(package, platform);
    }

    /// <summary>The platform for people: <c>uefi, Secure Boot on, lockdown integrity</c>.</summary>
    public static string Describe(HandoverPlatform? platform) => platform is null ? "platform not measured"
        : $"{HandoverPlatform.Spell(platform.Firmware)}, Secure Boot {platform.SecureBootWord}, lockdown {platform.LockdownWord}";
}

/// <summary>
/// What a verifier expects: the manufacturer roots, the time, the nonce it chose, the WireGuard key the evidence is
/// claimed for (it is in the quote's qualifying data) and the key the verifier talks to (the key binding), how the AK's
/// activation is checked (the verifier's own challenge), and which packages it accepts.
/// </summary>
public sealed record VerifierExpectations(
    X509Certificate2Collection TpmRoots, DateTimeOffset At, byte[] Nonce, byte[] ClaimedWireGuardKey, byte[] ExpectedWireGuardKey,
    Func<TpmPublic, X509Certificate2, byte[], StepResult> Activation, Func<MeasuredPackage, StepResult> Package)
{
    /// <summary>Fail <c>measured-boot</c> unless stboot measured that the firmware enforced Secure Boot (the PCR 13
    /// PlatformSecurity event says <c>"secure_boot": true</c>); <c>tabula relay attest --require-secure-boot</c>.</summary>
    public bool RequireSecureBoot { get; init; }
}

/// <summary>The verdict: every step made (in order, stopping at the first failure), and what was learned on the way.</summary>
public sealed record AttestationReport(IReadOnlyList<StepResult> Steps, TpmPublic? Ak, MeasuredPackage? Package, string QuoteSha256)
{
    /// <summary>The platform stboot measured (PCR 13 PlatformSecurity), once <c>measured-boot</c> read it from a log that
    /// replayed to the quote; null before that or when the log has none.</summary>
    public HandoverPlatform? Platform { get; init; }

    /// <summary>The SHA-256 PCRs 12, 13 and 14 the log replays to, once <c>event-log</c> passed (so they are the quoted
    /// values); null before that.</summary>
    public IReadOnlyDictionary<int, byte[]>? ReplayedPcrs { get; init; }

    /// <summary>True when every step passed.</summary>
    public bool Verified => Steps.Count == AttestationStep.All.Count && Steps.All(s => s.Ok);

    /// <summary>The first failed step, or null.</summary>
    public StepResult? Failed => Steps.FirstOrDefault(s => !s.Ok);
}

/// <summary>
/// Checks a relay's evidence step by step (<see cref="AttestationStep"/>), the same for the controller and a customer:
/// EK → manufacturer root; AK → EK by the verifier's credential-activation challenge; the quote is the AK's and binds the
/// nonce and the claimed WireGuard key; the log replays to the quoted PCRs 12-14; the log holds stboot's measurements; the
/// package is acceptable; the WireGuard key measured into PCR 14 is the claimed key and the one the verifier talks to.
/// The TPM formats, the quote check and the event log are Tabula.Tpm's (<see cref="TpmPublic"/>, <see cref="QuoteVerifier"/>,
/// <see cref="EventLog"/>); this class orders them into steps and says which one failed.
/// </summary>
public static class EvidenceVerifier
{
    /// <summary>The PCRs a quote must cover (SHA-256 bank): stboot's 12 (package), 13 (authority), 14 (identity, WireGuard key).</summary>
    public static readonly IReadOnlyList<int> QuotedPcrs = StbootPcr.Quoted.ToArray();

    /// <summary>Runs the steps in order, stopping at the first that fails.</summary>
    public static AttestationReport Verify(Evidence evidence, VerifierExpectations expect)
    {
        var steps = new List<StepResult>();
        string quoteSha256 = Convert.ToHexStringLower(SHA256.HashData(evidence.Quote));
        TpmPublic? ak = null;
        MeasuredPackage? package = null;
        HandoverPlatform? platform = null;
        IReadOnlyDictionary<int, byte[]>? quotedPcrs = null;
        AttestationReport Done() => new(steps, ak, package, quoteSha256) { Platform = platform, ReplayedPcrs = quotedPcrs };
        bool Add(StepResult step)
        {
            steps.Add(step);
            return step.Ok;
        }

        // 1. EK certificate → manufacturer root.
        if (!Add(EkCertificateCheck.Check(evidence.EkCertificate, expect.TpmRoots, expect.At, out var ek))) return Done();
        using (ek)
        {
            // 2. AK → EK: the AK is a restricted signing key made in a TPM, and that TPM answered the verifier's challenge.
            try { ak = AttestationKey.ParseAk(evidence.AkPublic); }
            catch (TpmFormatException e)
            {
                Add(StepResult.Fail(AttestationStep.AkActivation, "the AK public area does not parse: " + e.Message));
                return Done();
            }
            if (!AttestationKey.IsRestrictedSigningKeyOfThisTpm(ak))
            {
                Add(StepResult.Fail(AttestationStep.AkActivation, "the AK is not a restricted signing key made in its TPM (fixedTPM, fixedParent, sensitiveDataOrigin)"));
                return Done();
            }
            if (evidence.ActivationSecret.Length == 0)
            {
                Add(StepResult.Fail(AttestationStep.AkActivation,
                    "the relay's TPM gave no answer to the credential-activation challenge: it refused it (the AK is not in the EK's TPM)"));
                return Done();
            }
            if (!Add(expect.Activation(ak, ek!, evidence.ActivationSecret))) return Done();
        }

        // 3. The quote: the AK's signature over a TPM-made quote whose extraData binds the nonce and the claimed key.
        // 4. The log replays to the quoted PCR values.
        // Tabula.Tpm's QuoteVerifier checks both at once, the PCR digest last; the log is read first so its replay can be
        // given, and a log that does not parse is replayed as zeros: the quote's own checks still run and decide step 3
        // (a PCR digest mismatch then only means the log failed, which step 4 reports).
        TpmAttest quote;
        try { quote = TpmAttest.ParseQuote(evidence.Quote); }
        catch (TpmFormatException e)
        {
            Add(StepResult.Fail(AttestationStep.Quote, "the quote does not parse: " + e.Message));
            return Done();
        }
        TpmSignature signature;
        try { signature = TpmSignature.Parse(evidence.QuoteSignature); }
        catch (TpmFormatException e)
        {
            Add(StepResult.Fail(AttestationStep.Quote, "the quote's signature is not the AK's: " + e.Message));
            return Done();
        }
        EventLog? log = null;
        string? logError = null;
        try { log = EventLog.Parse(evidence.EventLog); }
        catch (EventLogException e) { logError = e.Message; }
        var replay = log?.Replay();
        var replayed = QuotedPcrs.ToDictionary(pcr => pcr, pcr => replay?.GetValueOrDefault(pcr) ?? new byte[SHA256.HashSizeInBytes]);
        // qualifiedSigner is the AK's qualified name (its parents' names hashed in), which needs the EK's public area to
        // recompute; it adds nothing to the AK's signature over the TPM-generated structure, so it is not checked.
        byte[] expected = AttestationBinding.QualifyingData(expect.Nonce, expect.ClaimedWireGuardKey);
        QuoteResult result;
        try { result = QuoteVerifier.Verify(ak, evidence.Quote, signature, expected, new PcrValues(TpmAlgorithm.Sha256, 0, replayed)); }
        catch (Exception e) when (e is CryptographicException or TpmFormatException)
        {
            Add(StepResult.Fail(AttestationStep.Quote, "the quote's signature is not the AK's: " + e.Message));
            return Done();
        }
        if (result is QuoteResult.Rejected { Reason: not QuoteRejection.PcrDigestMismatch } rejected)
        {
            Add(StepResult.Fail(AttestationStep.Quote, rejected.Reason switch
            {
                QuoteRejection.NonceMismatch =>
                    "the quote's qualifying data is not SHA-256(this nonce ‖ the WireGuard key): an old quote, or one made for another nonce or key",
                QuoteRejection.SelectionMismatch =>
                    $"the quote covers {string.Join(' ', quote.PcrSelection.Select(Describe))}, not sha256:12,13,14",
                QuoteRejection.Malformed => "the quote does not parse: " + rejected.Detail,
                QuoteRejection.NotAnAttestationKey => "the AK is not an attestation key: " + rejected.Detail,
                _ => "the quote's signature is not the AK's: " + rejected.Detail,
            }));
            return Done();
        }
        Add(StepResult.Pass(AttestationStep.Quote, $"signed by the AK over sha256:12,13,14, qualifying data binds the nonce (clock {quote.Clock} ms, resets {quote.ResetCount})"));

        if (log is null)
        {
            Add(StepResult.Fail(AttestationStep.EventLog, "the event log does not parse: " + logError));
            return Done();
        }
        if (result is QuoteResult.Rejected)
        {
            Add(StepResult.Fail(AttestationStep.EventLog, "the event log does not replay to the quoted PCRs 12-14 (a changed, added or missing event)"));
            return Done();
        }
        quotedPcrs = replayed;
        Add(StepResult.Pass(AttestationStep.EventLog, $"{log.Events.Count(e => e.Type != StbootEvent.NoAction)} events replay to the quoted PCRs 12-14"));

        // 5. stboot measured this boot, and only stboot measured into its PCRs: the last package archive with its descriptor
        // (PCR 12), the trust policy and the platform (PCR 13).
        var measured = StbootMeasurements.Read(log, out string? notStboot);
        if (measured is null)
        {
            Add(StepResult.Fail(AttestationStep.MeasuredBoot, notStboot!));
            return Done();
        }
        platform = measured.Platform;
        string onPlatform = StbootMeasurements.Describe(platform);
        if (expect.RequireSecureBoot && platform?.SecureBoot != true)
        {
            Add(StepResult.Fail(AttestationStep.MeasuredBoot, $"Secure Boot is required and stboot did not measure it on ({onPlatform})"));
            return Done();
        }
        package = measured.Package;
        Add(StepResult.Pass(AttestationStep.MeasuredBoot, $"stboot measured package {package.ArchiveSha256}, its descriptor and trust policy; {onPlatform}"));

        // 6. The package is one the verifier accepts.
        if (!Add(expect.Package(package))) return Done();

        // 7. Key binding: the WireGuard key measured into PCR 14 (after stboot's events) is the claimed key and the verifier's.
        var keys = log.Events.Where(e => e is { Pcr: StbootPcr.Identity, Type: StbootEvent.WireGuardKey }).ToList();
        if (keys.Count != 1 || keys[0].Data.Length != 32 || !keys[0].DigestIsOfData)
        {
            Add(StepResult.Fail(AttestationStep.KeyBinding, $"PCR 14 holds {keys.Count} WireGuard key measurements, not exactly one"));
            return Done();
        }
        if (!keys[0].Data.AsSpan().SequenceEqual(expect.ClaimedWireGuardKey) || !keys[0].Data.AsSpan().SequenceEqual(expect.ExpectedWireGuardKey))
        {
            Add(StepResult.Fail(AttestationStep.KeyBinding,
                $"the measured WireGuard key {Convert.ToBase64String(keys[0].Data)} is not the relay's key {Convert.ToBase64String(expect.ExpectedWireGuardKey)}"));
            return Done();
        }
        Add(StepResult.Pass(AttestationStep.KeyBinding, "the WireGuard key measured into PCR 14 and quoted is the relay's key"));
        return Done();
    }

    static string Describe(PcrSelection selection) =>
        $"{selection.Bank.ToString().ToLowerInvariant()}:{string.Join(',', selection.Indexes)}";
}

using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Tabula.Attestation;
using Tabula.Fleet.Protocol;
using Tabula.Fleet.Security;
using Tabula.Fleet.Storage;
using Tabula.Tpm;

namespace Tabula.Fleet.Core;

/// <summary>The fleet's attestation settings: the policy, the TPM manufacturer roots (none: every EK fails), the CA.</summary>
public sealed class AttestationSettings(AttestationPolicy policy, X509Certificate2Collection? tpmRoots, AttestationCa? ca)
{
    public AttestationPolicy Policy { get; } = policy;
    public X509Certificate2Collection TpmRoots { get; } = tpmRoots ?? [];

    /// <summary>The CA that certifies attested relays' AKs; null on a PostgreSQL fleet that named none (relays are still
    /// verified, but get no AK certificate).</summary>
    public AttestationCa? Ca { get; } = ca;

    /// <summary>Reads <see cref="FleetOptions.TpmRootsPath"/> and the CA; required attestation without roots is refused (exit 2).</summary>
    public static AttestationSettings Create(FleetOptions options)
    {
        X509Certificate2Collection? roots = null;
        if (options.TpmRootsPath is { } path)
        {
            try { roots = EkCertificateCheck.ReadRoots(File.ReadAllText(path)); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
            {
                throw new ArgumentException($"--tpm-roots {path}: {e.Message}", e);
            }
        }
        else if (options.Attestation == AttestationPolicy.Required)
            throw new ArgumentException("--attestation required needs --tpm-roots PEM (the TPM manufacturer roots EK certificates chain to)");
        // A SQLite fleet keeps the CA next to its database; a PostgreSQL fleet has no data folder, and must name the file when it
        // wants AK certificates (required attestation does).
        bool postgres = options.Database.StartsWith("postgres:", StringComparison.Ordinal);
        if (postgres && options.AttestationCaPath is null && options.Attestation == AttestationPolicy.Required)
            throw new ArgumentException("--attestation required with PostgreSQL needs --attestation-ca PATH (the same file on every instance)");
        var ca = postgres && options.AttestationCaPath is null ? null
            : AttestationCa.LoadOrCreate(options.AttestationCaPath ?? AttestationCa.DefaultPath(options.Database));
        return new AttestationSettings(options.Attestation, roots, ca);
    }
}

/// <summary>
/// The controller's side of attestation at enrollment (issue 19, docs/attestation.md): the credential-activation challenge
/// made with the enrollment nonce, and the verdict on the evidence sent with the enrollment (<see cref="EvidenceVerifier"/>
/// with the controller's expectations: its nonce, the enrollment's WireGuard key, the reported package which staff must
/// have allowed). An attested machine gets an AK certificate.
/// </summary>
public sealed class AttestationService(AttestationSettings settings, TimeProvider time)
{
    public AttestationPolicy Policy => settings.Policy;

    /// <summary>
    /// The challenge for the keys a relay named with its nonce request, or null (and no row) when it named none. Bad keys
    /// are refused with 400: a relay that sends them has a broken TPM stack, and enrolling would fail at the same step.
    /// </summary>
    public (CredentialChallenge Wire, AttestationChallenge Row)? MakeChallenge(AttestationKeys? keys, byte[] nonce, DateTimeOffset expires)
    {
        if (keys is null || (keys.EkCertificate is null && keys.AkPublic is null)) return null;
        byte[] ekDer = Base64(keys.EkCertificate, "ek_certificate"), akBytes = Base64(keys.AkPublic, "ak_public");
        TpmPublic ak;
        try { ak = AttestationKey.ParseAk(akBytes); }
        catch (TpmFormatException e) { throw new FleetException(FleetError.InvalidInput, "ak_public: " + e.Message); }
        X509Certificate2 ek;
        try { ek = X509CertificateLoader.LoadCertificate(ekDer); }
        catch (CryptographicException) { throw new FleetException(FleetError.InvalidInput, "ek_certificate is not a DER certificate"); }
        using (ek)
        {
            byte[] secret = RandomNumberGenerator.GetBytes(AttestationKey.SecretBytes);
            MadeCredential made;
            try { made = AttestationKey.Challenge(ek, ak.Name, secret); }
            catch (CryptographicException) { throw new FleetException(FleetError.InvalidInput, "ek_certificate is not an RSA EK"); }
            var (blob, encrypted) = made;
            var row = new AttestationChallenge(nonce, ak.Name, SHA256.HashData(ekDer), SHA256.HashData(secret), expires.ToUnixTimeMilliseconds());
            CryptographicOperations.ZeroMemory(secret);
            return (new CredentialChallenge(Convert.ToBase64String(blob), Convert.ToBase64String(encrypted)), row);
        }
    }

    /// <summary>
    /// The verdict on an enrollment's evidence, in the enrolling transaction (the package check reads the allowed list there).
    /// <paramref name="challenge"/> is what the nonce request stored (null: the relay asked for none, so activation fails).
    /// </summary>
    public async Task<(MachineAttestation Record, AttestationReport? Report)> EvaluateAsync(IStoreTx tx, string machineId, byte[] nonce,
        byte[] wireGuardKey, string packageDigest, AttestationEvidence? wire, AttestationChallenge? challenge)
    {
        if (wire is null) return (new MachineAttestation(machineId, AttestationStatus.Absent, null, "the relay sent no TPM evidence", null, 0, null, null, tx.Now), null);
        var evidence = Evidence.Decode(wire, out string? why);
        if (evidence is null)
            return (Failed(machineId, AttestationStep.EkCertificate, "malformed evidence: " + why, null, tx.Now), null);
        bool allowed = await tx.IsPackageAllowedAsync(packageDigest);
        long release = (await tx.GetPackageReleaseAsync(packageDigest))?.Release ?? (await tx.GetMachineFreshnessAsync(machineId))?.Release ?? 0;
        var expect = new VerifierExpectations(settings.TpmRoots, time.GetUtcNow(), nonce, wireGuardKey, wireGuardKey,
            (ak, ek, answer) => CheckActivation(challenge, ak, evidence.EkCertificate, answer),
            measured => measured.ArchiveSha256 != packageDigest
                ? StepResult.Fail(AttestationStep.Package, $"stboot measured package {measured.ArchiveSha256}, the relay reports {packageDigest}")
                : allowed ? StepResult.Pass(AttestationStep.Package, $"package {packageDigest} is allowed")
                : StepResult.Fail(AttestationStep.Package, $"package {packageDigest} is not one staff allowed"));
        var report = EvidenceVerifier.Verify(evidence, expect);
        byte[] ekSha256 = SHA256.HashData(evidence.EkCertificate);
        if (!report.Verified)
        {
            var failed = report.Failed ?? StepResult.Fail(AttestationStep.All[report.Steps.Count], "not checked");
            return (Failed(machineId, failed.Name, failed.Detail, ekSha256, tx.Now), report);
        }
        byte[]? certificate = settings.Ca?.IssueAkCertificate(AttestationKey.ToPublicKey(report.Ak!), machineId, packageDigest, release, time.GetUtcNow());
        return (new MachineAttestation(machineId, AttestationStatus.Attested, null, null, packageDigest, release, certificate, ekSha256, tx.Now), report);
    }

    static MachineAttestation Failed(string machineId, string step, string detail, byte[]? ekSha256, long now) =>
        new(machineId, AttestationStatus.Failed, step, detail.Length > FleetLimits.MaxReasonLength ? detail[..FleetLimits.MaxReasonLength] : detail,
            null, 0, null, ekSha256, now);

    static StepResult CheckActivation(AttestationChallenge? challenge, TpmPublic ak, byte[] ekCertificate, byte[] answer)
    {
        if (challenge is null)
            return StepResult.Fail(AttestationStep.AkActivation, "no credential challenge was made for this nonce (the nonce request named no TPM keys)");
        if (!challenge.AkName.AsSpan().SequenceEqual(ak.Name) || !challenge.EkSha256.AsSpan().SequenceEqual(SHA256.HashData(ekCertificate)))
            return StepResult.Fail(AttestationStep.AkActivation, "the evidence names another EK or AK than the challenge was made for");
        return CryptographicOperations.FixedTimeEquals(challenge.SecretSha256, SHA256.HashData(answer))
            ? StepResult.Pass(AttestationStep.AkActivation, "the TPM holding the EK answered the challenge for this AK")
            : StepResult.Fail(AttestationStep.AkActivation, "the TPM did not answer the challenge: the AK is not in the EK's TPM");
    }

    static byte[] Base64(string? text, string field)
    {
        try { return Convert.FromBase64String(text ?? throw new FormatException()); }
        catch (FormatException) { throw new FleetException(FleetError.InvalidInput, $"{field} must be base64"); }
    }
}

namespace Tabula.Fleet;

/// <summary>Whether a relay must attest with its TPM before it may serve (issue 19, docs/attestation.md).</summary>
public enum AttestationPolicy
{
    /// <summary>Evidence is checked and recorded when a relay sends it; a relay without it, or failing a step, may still be
    /// deployed by staff. The default, so a fleet without TPMs keeps working.</summary>
    Optional,
    /// <summary>A relay that sends no evidence or fails any step is never put into service: it waits, and staff cannot
    /// provision or deploy it; the machine record names the step.</summary>
    Required,
}

/// <summary>A machine's attestation as its latest enrollment left it.</summary>
public enum AttestationStatus
{
    /// <summary>Every step passed; the controller issued an AK certificate.</summary>
    Attested,
    /// <summary>A step failed (<see cref="MachineAttestation.FailedStep"/>).</summary>
    Failed,
    /// <summary>The relay sent no evidence (no TPM, or an older agent).</summary>
    Absent,
}

/// <summary>
/// A machine's attestation record (schema 12, <c>machine_attestation</c>): the status of its latest enrollment, the step
/// that failed and why, and with <see cref="AttestationStatus.Attested"/> the measured package digest, its release (0 when
/// staff named none) and the AK certificate issued (DER).
/// </summary>
public sealed record MachineAttestation(string MachineId, AttestationStatus Status, string? FailedStep, string? Detail,
    string? PackageDigest, long Release, byte[]? AkCertificate, byte[]? EkSha256, long AttestedAt);

/// <summary>
/// The credential-activation challenge the controller made at <c>/relay/v1/enroll/nonce</c> (schema 12,
/// <c>attestation_challenges</c>): for the nonce, the AK's name and EK it was made for, and SHA-256 of the secret the TPM must
/// return. Consumed with the nonce at enrollment.
/// </summary>
public sealed record AttestationChallenge(byte[] Nonce, byte[] AkName, byte[] EkSha256, byte[] SecretSha256, long ExpiresAt);

public static class AttestationNames
{
    public static string Name(this AttestationStatus status) => status switch
    {
        AttestationStatus.Attested => "attested",
        AttestationStatus.Failed => "failed",
        _ => "absent",
    };

    public static AttestationStatus ParseStatus(string text) => text switch
    {
        "attested" => AttestationStatus.Attested,
        "failed" => AttestationStatus.Failed,
        "absent" => AttestationStatus.Absent,
        _ => throw new FormatException($"unknown attestation status '{text}'"),
    };

    public static string Name(this AttestationPolicy policy) => policy == AttestationPolicy.Required ? "required" : "optional";
}

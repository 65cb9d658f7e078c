namespace Tabula.Packaging;

/// <summary>Why one (certificate, signature) entry does not count.</summary>
public enum SignatureRejection
{
    /// <summary>The certificate entry is not base64.</summary>
    CertificateNotBase64,
    /// <summary>The certificate entry decodes to something other than PEM (e.g. raw DER).</summary>
    CertificateNotPem,
    /// <summary>The PEM holds no parsable X.509 certificate.</summary>
    CertificateUnparsable,
    /// <summary>Neither a root nor issued (and signed) by one: wrong root, or an intermediate.</summary>
    NotIssuedByRoot,
    /// <summary>The leaf or its root is outside its validity period at the verification time.</summary>
    CertificateNotValidAtTime,
    /// <summary>An EKU that lacks serverAuth and anyExtendedKeyUsage (Go's, and so stboot's, rule).</summary>
    IncompatibleKeyUsage,
    /// <summary>The signer key is not Ed25519.</summary>
    NotEd25519,
    /// <summary>The signature entry is not base64.</summary>
    SignatureNotBase64,
    /// <summary>The signature does not verify over SHA-256 of the archive.</summary>
    SignatureInvalid,
    /// <summary>A Sigsum policy is configured and this entry is a bare signature.</summary>
    SigsumProofRequired,
    /// <summary>The entry is a Sigsum proof but no Sigsum policy is configured.</summary>
    SigsumPolicyMissing,
    /// <summary>The Sigsum proof is malformed or does not verify.</summary>
    SigsumProofInvalid,
    /// <summary>Another valid signature by the same public key was already counted.</summary>
    DuplicateSignerKey,
}

/// <summary>The outcome for one descriptor entry.</summary>
/// <param name="Index">Position in the descriptor arrays.</param>
/// <param name="Rejection">Null when the signature counts.</param>
/// <param name="Reason">One line for humans: "valid" or what failed.</param>
/// <param name="SignerKeySha256">Hex SHA-256 of the signer's raw public key, when the certificate parsed.</param>
public sealed record SignatureCheck(int Index, SignatureRejection? Rejection, string Reason, string? SignerKeySha256)
{
    /// <summary>True when this entry counts toward the threshold.</summary>
    public bool Valid => Rejection is null;
}

/// <summary>
/// A verification outcome as a value: expected refusals are data, never exceptions.
/// <see cref="Accepted"/> iff <see cref="Valid"/> ≥ <see cref="Required"/>.
/// </summary>
public sealed record VerifyResult(string ArchiveSha256, int Found, int Valid, int Required, IReadOnlyList<SignatureCheck> Checks)
{
    /// <summary>True when enough distinct signers verified.</summary>
    public bool Accepted => Valid >= Required;

    /// <summary>The upstream log line, e.g. "Signatures: 3 found, 1 valid, 2 required".</summary>
    public string Summary => $"{Found} found, {Valid} valid, {Required} required";
}

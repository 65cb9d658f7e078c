namespace Tabula.Tpm;

/// <summary>
/// Public-area templates: the endorsement keys of the TCG EK Credential Profile (so the key a TPM derives matches
/// the EK certificate its manufacturer stored), the storage root key of the TCG provisioning guidance, and Tabula's
/// attestation key (a restricted signing key that only signs TPM-made structures such as quotes).
/// </summary>
public static class TpmTemplates
{
    /// <summary>TPMA_OBJECT of the EK (profile 2.1.5.1): fixedTPM, fixedParent, sensitiveDataOrigin, adminWithPolicy, restricted, decrypt.</summary>
    public const TpmObjectAttributes EkAttributes = TpmObjectAttributes.FixedTpm | TpmObjectAttributes.FixedParent
        | TpmObjectAttributes.SensitiveDataOrigin | TpmObjectAttributes.AdminWithPolicy | TpmObjectAttributes.Restricted
        | TpmObjectAttributes.Decrypt;

    /// <summary>TPMA_OBJECT of the AK: fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth, restricted, sign (as tpm2_createak).</summary>
    public const TpmObjectAttributes AkAttributes = TpmObjectAttributes.FixedTpm | TpmObjectAttributes.FixedParent
        | TpmObjectAttributes.SensitiveDataOrigin | TpmObjectAttributes.UserWithAuth | TpmObjectAttributes.Restricted
        | TpmObjectAttributes.Sign;

    /// <summary>
    /// The EK's authPolicy: PolicySecret(TPM_RH_ENDORSEMENT) with SHA-256, i.e. the EK may be used in a session
    /// that proved the endorsement hierarchy's authValue (EK Credential Profile, B.3.3).
    /// </summary>
    public static ReadOnlySpan<byte> EkPolicySha256 =>
    [
        0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
        0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA,
    ];

    /// <summary>EK template L-1 (RSA 2048, AES-128-CFB, SHA-256): its certificate is at NV index 0x01c00002.</summary>
    public static TpmPublic EkRsa2048 => new()
    {
        Type = TpmAlgorithm.Rsa, NameAlg = TpmAlgorithm.Sha256, Attributes = EkAttributes, AuthPolicy = EkPolicySha256.ToArray(),
        Symmetric = TpmAlgorithm.Aes, SymmetricKeyBits = 128, SymmetricMode = TpmAlgorithm.Cfb,
        RsaKeyBits = 2048, RsaExponent = 0, RsaModulus = new byte[256],
    };

    /// <summary>EK template L-2 (ECC NIST P-256, AES-128-CFB, SHA-256): its certificate is at NV index 0x01c0000a.</summary>
    public static TpmPublic EkEccP256 => new()
    {
        Type = TpmAlgorithm.Ecc, NameAlg = TpmAlgorithm.Sha256, Attributes = EkAttributes, AuthPolicy = EkPolicySha256.ToArray(),
        Symmetric = TpmAlgorithm.Aes, SymmetricKeyBits = 128, SymmetricMode = TpmAlgorithm.Cfb,
        Curve = TpmEccCurve.NistP256, EccX = new byte[32], EccY = new byte[32],
    };

    /// <summary>The storage root key (RSA 2048, AES-128-CFB, userWithAuth, noDA), the parent of attestation keys.</summary>
    public static TpmPublic SrkRsa2048 => new()
    {
        Type = TpmAlgorithm.Rsa, NameAlg = TpmAlgorithm.Sha256,
        Attributes = TpmObjectAttributes.FixedTpm | TpmObjectAttributes.FixedParent | TpmObjectAttributes.SensitiveDataOrigin
            | TpmObjectAttributes.UserWithAuth | TpmObjectAttributes.NoDa | TpmObjectAttributes.Restricted | TpmObjectAttributes.Decrypt,
        Symmetric = TpmAlgorithm.Aes, SymmetricKeyBits = 128, SymmetricMode = TpmAlgorithm.Cfb,
        RsaKeyBits = 2048,
    };

    /// <summary>An attestation key: RSA 2048, RSASSA-PKCS1-v1_5 with SHA-256, restricted signing.</summary>
    public static TpmPublic AkRsa2048 => new()
    {
        Type = TpmAlgorithm.Rsa, NameAlg = TpmAlgorithm.Sha256, Attributes = AkAttributes,
        Scheme = TpmAlgorithm.RsaSsa, SchemeHash = TpmAlgorithm.Sha256, RsaKeyBits = 2048,
    };

    /// <summary>An attestation key: ECC P-256, ECDSA with SHA-256, restricted signing.</summary>
    public static TpmPublic AkEccP256 => new()
    {
        Type = TpmAlgorithm.Ecc, NameAlg = TpmAlgorithm.Sha256, Attributes = AkAttributes,
        Scheme = TpmAlgorithm.Ecdsa, SchemeHash = TpmAlgorithm.Sha256, Curve = TpmEccCurve.NistP256,
    };

    /// <summary>NV index of the RSA 2048 EK certificate (EK Credential Profile 2.2.1.4).</summary>
    public const uint RsaEkCertificateIndex = 0x01C00002;

    /// <summary>NV index of the ECC P-256 EK certificate.</summary>
    public const uint EccEkCertificateIndex = 0x01C0000A;
}

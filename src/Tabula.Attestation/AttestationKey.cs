using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Tabula.Tpm;

namespace Tabula.Attestation;

/// <summary>
/// A relay's TPM keys as a verifier takes them, on Tabula.Tpm's formats (the one owner of TPMT_PUBLIC and
/// MakeCredential): the AK's public area with the verifier's own bounds, and the credential-activation challenge made to
/// the EK named by its certificate. The controller (at enrollment) and <c>tabula relay attest</c> both use it.
/// </summary>
public static class AttestationKey
{
    /// <summary>The challenge secret's size: 32 bytes (a TPM2B_DIGEST of the EK's SHA-256 name algorithm).</summary>
    public const int SecretBytes = 32;

    /// <summary>Largest AK public area accepted (a TPMT_PUBLIC of RSA-4096 is about 560 bytes).</summary>
    public const int MaxPublicAreaBytes = 2048;

    /// <summary>
    /// Reads the AK's TPMT_PUBLIC (no TPM2B size in front) with <see cref="TpmPublic.Parse"/>, and refuses, with a
    /// <see cref="TpmFormatException"/>, what a verifier does not take: a name algorithm other than SHA-256 or SHA-384
    /// (the name is what the challenge is bound to), an RSA key under 2048 bits or without its modulus, an ECC key off
    /// NIST P-256/P-384 or without its whole point, and more than <see cref="MaxPublicAreaBytes"/>.
    /// </summary>
    public static TpmPublic ParseAk(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > MaxPublicAreaBytes)
            throw new TpmFormatException(TpmFormatError.TooLarge, $"TPMT_PUBLIC ({bytes.Length} bytes, at most {MaxPublicAreaBytes})");
        var ak = TpmPublic.Parse(bytes);
        if (ak.NameAlg is not (TpmAlgorithm.Sha256 or TpmAlgorithm.Sha384))
            throw new TpmFormatException(TpmFormatError.UnsupportedAlgorithm, $"TPMT_PUBLIC.nameAlg ({ak.NameAlg}, not SHA-256 or SHA-384)");
        switch (ak.Type)
        {
            case TpmAlgorithm.Rsa when ak.RsaKeyBits < 2048 || ak.RsaModulus.Length * 8 != ak.RsaKeyBits:
                throw new TpmFormatException(TpmFormatError.SizeMismatch,
                    $"TPM2B_PUBLIC_KEY_RSA (a modulus of {ak.RsaModulus.Length * 8} bits for keyBits {ak.RsaKeyBits}, 2048 at least)");
            case TpmAlgorithm.Ecc:
                int size = ak.Curve switch
                {
                    TpmEccCurve.NistP256 => 32,
                    TpmEccCurve.NistP384 => 48,
                    _ => throw new TpmFormatException(TpmFormatError.UnsupportedAlgorithm, $"TPMS_ECC_PARMS.curveID ({ak.Curve}, not NIST P-256 or P-384)"),
                };
                if (ak.EccX.Length != size || ak.EccY.Length != size)
                    throw new TpmFormatException(TpmFormatError.SizeMismatch, "TPMS_ECC_POINT (not the curve's size)");
                break;
        }
        return ak;
    }

    /// <summary>An attestation key as Tabula wants one: made in this TPM (fixedTPM, fixedParent, sensitiveDataOrigin),
    /// restricted to signing TPM-made structures, so it cannot sign a forged TPMS_ATTEST.</summary>
    public static bool IsRestrictedSigningKeyOfThisTpm(TpmPublic ak)
    {
        const TpmObjectAttributes required = TpmObjectAttributes.FixedTpm | TpmObjectAttributes.FixedParent
            | TpmObjectAttributes.SensitiveDataOrigin | TpmObjectAttributes.Restricted | TpmObjectAttributes.Sign;
        return (ak.Attributes & required) == required;
    }

    /// <summary>The key as a <see cref="PublicKey"/> (for the AK certificate).</summary>
    public static PublicKey ToPublicKey(TpmPublic key)
    {
        if (key.Type == TpmAlgorithm.Rsa)
        {
            using var rsa = key.ToRsa();
            return new PublicKey(rsa);
        }
        using var ecdsa = ECDsa.Create(key.ToEcParameters());
        return new PublicKey(ecdsa);
    }

    /// <summary>
    /// TPM2_MakeCredential for <paramref name="secret"/> to the RSA EK in <paramref name="ekCertificate"/>, for the object
    /// named <paramref name="akName"/>: Tabula.Tpm's <see cref="Credential.Make"/> with the EK as the TCG's default RSA
    /// template describes it (EK Credential Profile L-1: SHA-256 name algorithm, AES-128-CFB), the certificate's modulus
    /// and exponent in it. Only the TPM holding that EK can open it, and only for a loaded object of that name.
    /// Throws <see cref="CryptographicException"/> when the certificate holds no RSA key.
    /// </summary>
    public static MadeCredential Challenge(X509Certificate2 ekCertificate, ReadOnlySpan<byte> akName, ReadOnlySpan<byte> secret)
    {
        if (secret.Length is 0 or > SecretBytes)
            throw new ArgumentException($"a credential is 1-{SecretBytes} bytes", nameof(secret));
        using var rsa = ekCertificate.GetRSAPublicKey() ?? throw new CryptographicException("the EK certificate holds no RSA key");
        var parameters = rsa.ExportParameters(false);
        byte[] modulus = parameters.Modulus!, exponentBytes = parameters.Exponent!;
        if (exponentBytes.Length > 4)
            throw new CryptographicException("the EK's public exponent does not fit a TPM's 32 bits");
        uint exponent = 0;
        foreach (byte b in exponentBytes)
            exponent = exponent << 8 | b;
        var ek = TpmTemplates.EkRsa2048 with
        {
            RsaKeyBits = modulus.Length * 8, RsaModulus = modulus, RsaExponent = exponent == 65537 ? 0 : exponent,
        };
        return Credential.Make(ek, akName, secret);
    }
}

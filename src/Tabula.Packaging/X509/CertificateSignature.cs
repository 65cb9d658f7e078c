using System.Security.Cryptography;
using Tabula.Packaging.Crypto;

namespace Tabula.Packaging;

/// <summary>
/// Checks that an issuer's key signed a certificate. Package leaves are Ed25519, but roots may use
/// another algorithm (an ECDSA or RSA root over an Ed25519 leaf), so the common ones are supported.
/// </summary>
internal static class CertificateSignature
{
    public static bool IsSignedBy(Certificate subject, Certificate issuer)
    {
        ReadOnlySpan<byte> tbs = subject.TbsCertificate.Span;
        try
        {
            switch (subject.SignatureAlgorithm)
            {
                case Ed25519Keys.Oid:
                    return issuer.HasEd25519Key && Ed25519.Verify(issuer.PublicKey, tbs, subject.Signature);
                case "1.2.840.10045.4.3.2": return VerifyEcdsa(issuer, tbs, subject.Signature, HashAlgorithmName.SHA256);
                case "1.2.840.10045.4.3.3": return VerifyEcdsa(issuer, tbs, subject.Signature, HashAlgorithmName.SHA384);
                case "1.2.840.10045.4.3.4": return VerifyEcdsa(issuer, tbs, subject.Signature, HashAlgorithmName.SHA512);
                case "1.2.840.113549.1.1.11": return VerifyRsa(issuer, tbs, subject.Signature, HashAlgorithmName.SHA256);
                case "1.2.840.113549.1.1.12": return VerifyRsa(issuer, tbs, subject.Signature, HashAlgorithmName.SHA384);
                case "1.2.840.113549.1.1.13": return VerifyRsa(issuer, tbs, subject.Signature, HashAlgorithmName.SHA512);
                default: return false; // SHA-1, RSA-PSS and others: not accepted
            }
        }
        catch (CryptographicException)
        {
            return false; // the issuer key does not fit the algorithm
        }
    }

    private static bool VerifyEcdsa(Certificate issuer, ReadOnlySpan<byte> data, byte[] signature, HashAlgorithmName hash)
    {
        if (issuer.PublicKeyAlgorithm != "1.2.840.10045.2.1") return false;
        using var ecdsa = ECDsa.Create();
        ecdsa.ImportSubjectPublicKeyInfo(issuer.SubjectPublicKeyInfo, out _);
        return ecdsa.VerifyData(data, signature, hash, DSASignatureFormat.Rfc3279DerSequence);
    }

    private static bool VerifyRsa(Certificate issuer, ReadOnlySpan<byte> data, byte[] signature, HashAlgorithmName hash)
    {
        if (issuer.PublicKeyAlgorithm != "1.2.840.113549.1.1.1") return false;
        using var rsa = RSA.Create();
        rsa.ImportSubjectPublicKeyInfo(issuer.SubjectPublicKeyInfo, out _);
        return rsa.VerifyData(data, signature, hash, RSASignaturePadding.Pkcs1);
    }
}

using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Text;

namespace Tabula.Packaging.Crypto;

/// <summary>
/// Ed25519 keys in the encodings OpenSSL, Go and stmgr use: PKCS#8 "PRIVATE KEY" (RFC 8410) and
/// SubjectPublicKeyInfo "PUBLIC KEY". Only Ed25519 is accepted.
/// </summary>
public static class Ed25519Keys
{
    /// <summary>id-Ed25519 (RFC 8410).</summary>
    public const string Oid = "1.3.101.112";

    /// <summary>PKCS#8 PEM text for a 32-byte seed.</summary>
    public static string ToPkcs8Pem(ReadOnlySpan<byte> privateKey)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            writer.WriteInteger(0);
            using (writer.PushSequence()) writer.WriteObjectIdentifier(Oid);
            // CurvePrivateKey ::= OCTET STRING, itself wrapped in the PKCS#8 privateKey OCTET STRING.
            var inner = new AsnWriter(AsnEncodingRules.DER);
            inner.WriteOctetString(privateKey);
            writer.WriteOctetString(inner.Encode());
        }
        byte[] der = writer.Encode();
        try { return new string(PemEncoding.Write("PRIVATE KEY", der)) + "\n"; }
        finally { CryptographicOperations.ZeroMemory(der); }
    }

    /// <summary>The 32-byte seed from PKCS#8 PEM text, or throws <see cref="PackageFormatException"/>.</summary>
    public static byte[] FromPkcs8Pem(ReadOnlySpan<byte> pemUtf8)
    {
        byte[] der = Pem.ReadSingle(pemUtf8, "PRIVATE KEY");
        try
        {
            var reader = new AsnReader(der, AsnEncodingRules.DER);
            var seq = reader.ReadSequence();
            seq.ReadInteger(); // version 0 or 1 (v1 may carry the public key too; we recompute it)
            var alg = seq.ReadSequence();
            string oid = alg.ReadObjectIdentifier();
            if (oid != Oid)
                PackageFormatException.Throw(FormatError.InvalidKey, $"the private key is not Ed25519 (algorithm {oid}); only Ed25519 keys sign OS packages");
            var inner = new AsnReader(seq.ReadOctetString(), AsnEncodingRules.DER);
            byte[] seed = inner.ReadOctetString();
            if (seed.Length != Ed25519.PrivateKeySize)
                PackageFormatException.Throw(FormatError.InvalidKey, $"an Ed25519 private key is 32 bytes, this one is {seed.Length}");
            return seed;
        }
        catch (AsnContentException e)
        {
            return PackageFormatException.Throw<byte[]>(FormatError.InvalidKey, "the private key is not valid PKCS#8 DER", e);
        }
        finally { CryptographicOperations.ZeroMemory(der); }
    }

    /// <summary>DER SubjectPublicKeyInfo for a raw Ed25519 public key.</summary>
    public static byte[] ToSubjectPublicKeyInfo(ReadOnlySpan<byte> publicKey)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        WriteSubjectPublicKeyInfo(writer, publicKey);
        return writer.Encode();
    }

    internal static void WriteSubjectPublicKeyInfo(AsnWriter writer, ReadOnlySpan<byte> publicKey)
    {
        using (writer.PushSequence())
        {
            using (writer.PushSequence()) writer.WriteObjectIdentifier(Oid);
            writer.WriteBitString(publicKey);
        }
    }

    /// <summary>PEM "PUBLIC KEY" text for a raw Ed25519 public key.</summary>
    public static string ToPublicKeyPem(ReadOnlySpan<byte> publicKey) =>
        new string(PemEncoding.Write("PUBLIC KEY", ToSubjectPublicKeyInfo(publicKey))) + "\n";

    /// <summary>
    /// The raw 32-byte public key from PEM "PUBLIC KEY" text (SubjectPublicKeyInfo, RFC 8410), or throws
    /// <see cref="PackageFormatException"/> (<see cref="FormatError.InvalidPem"/>, <see cref="FormatError.InvalidKey"/>).
    /// </summary>
    public static byte[] FromPublicKeyPem(ReadOnlySpan<byte> pemUtf8) => FromSubjectPublicKeyInfo(Pem.ReadSingle(pemUtf8, "PUBLIC KEY"));

    /// <summary>The raw 32-byte public key from DER SubjectPublicKeyInfo; only Ed25519 is accepted.</summary>
    public static byte[] FromSubjectPublicKeyInfo(ReadOnlySpan<byte> der)
    {
        try
        {
            var reader = new AsnReader(der.ToArray(), AsnEncodingRules.DER);
            var spki = reader.ReadSequence();
            reader.ThrowIfNotEmpty();
            var alg = spki.ReadSequence();
            string oid = alg.ReadObjectIdentifier();
            if (oid != Oid)
                PackageFormatException.Throw(FormatError.InvalidKey, $"the public key is not Ed25519 (algorithm {oid})");
            alg.ThrowIfNotEmpty();   // RFC 8410: the parameters are absent
            byte[] key = spki.ReadBitString(out int unused);
            spki.ThrowIfNotEmpty();
            if (unused != 0 || key.Length != Ed25519.PublicKeySize)
                PackageFormatException.Throw(FormatError.InvalidKey, $"an Ed25519 public key is 32 bytes, this one is {key.Length}");
            return key;
        }
        catch (AsnContentException e)
        {
            return PackageFormatException.Throw<byte[]>(FormatError.InvalidKey, "the public key is not valid SubjectPublicKeyInfo DER", e);
        }
    }
}

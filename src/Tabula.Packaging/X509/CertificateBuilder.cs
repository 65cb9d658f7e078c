using System.Formats.Asn1;
using System.Security.Cryptography;
using Tabula.Packaging.Crypto;

namespace Tabula.Packaging;

/// <summary>
/// Issues Ed25519 certificates shaped as stmgr's `keygen certificate` makes them: CN = base64 of
/// SHA-256 of the raw public key; a root has keyUsage digitalSignature+keyCertSign (critical),
/// basicConstraints CA (critical) and a subject key id; a leaf has keyUsage digitalSignature
/// (critical), an authority key id, and no EKU.
/// </summary>
public static class CertificateBuilder
{
    /// <summary>A self-signed root certificate for <paramref name="privateKey"/>.</summary>
    public static byte[] CreateRoot(ReadOnlySpan<byte> privateKey, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        byte[] publicKey = Ed25519.PublicKeyOf(privateKey);
        byte[] name = EncodeName(CommonNameFor(publicKey));
        return Sign(privateKey, name, name, publicKey, notBefore, notAfter, isRoot: true, issuerKeyId: KeyId(publicKey), extendedKeyUsages: null);
    }

    /// <summary>A leaf certificate for <paramref name="leafPublicKey"/>, signed by the root key.</summary>
    public static byte[] CreateLeaf(ReadOnlySpan<byte> rootPrivateKey, Certificate root, ReadOnlySpan<byte> leafPublicKey,
        DateTimeOffset notBefore, DateTimeOffset notAfter) =>
        CreateLeaf(rootPrivateKey, root, leafPublicKey, notBefore, notAfter, extendedKeyUsages: null);

    /// <summary>As stmgr's leaf, plus an EKU extension: only to exercise stboot's EKU rule in tests.</summary>
    internal static byte[] CreateLeaf(ReadOnlySpan<byte> rootPrivateKey, Certificate root, ReadOnlySpan<byte> leafPublicKey,
        DateTimeOffset notBefore, DateTimeOffset notAfter, IReadOnlyList<string>? extendedKeyUsages)
    {
        if (!root.HasEd25519Key || !Ed25519.PublicKeyOf(rootPrivateKey).AsSpan().SequenceEqual(root.PublicKey))
            throw new ArgumentException("the root private key does not match the root certificate", nameof(rootPrivateKey));
        return Sign(rootPrivateKey, root.Subject.ToArray(), EncodeName(CommonNameFor(leafPublicKey)), leafPublicKey,
            notBefore, notAfter, isRoot: false, issuerKeyId: KeyId(root.PublicKey), extendedKeyUsages);
    }

    /// <summary>The CN stmgr writes: base64 (standard, padded) of SHA-256 of the raw public key.</summary>
    public static string CommonNameFor(ReadOnlySpan<byte> publicKey) => Convert.ToBase64String(SHA256.HashData(publicKey));

    private static byte[] KeyId(ReadOnlySpan<byte> publicKey) => SHA256.HashData(publicKey)[..20];

    private static byte[] Sign(ReadOnlySpan<byte> signerKey, byte[] issuer, byte[] subject, ReadOnlySpan<byte> subjectKey,
        DateTimeOffset notBefore, DateTimeOffset notAfter, bool isRoot, byte[] issuerKeyId, IReadOnlyList<string>? extendedKeyUsages)
    {
        if (notAfter <= notBefore)
            throw new ArgumentException("the certificate must end after it starts", nameof(notAfter));
        var tbs = new AsnWriter(AsnEncodingRules.DER);
        using (tbs.PushSequence())
        {
            using (tbs.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true))) tbs.WriteInteger(2);
            byte[] serial = RandomNumberGenerator.GetBytes(16);
            serial[0] &= 0x7F; // positive
            serial[0] |= 0x01; // and 16 bytes long (no leading zero to strip)
            tbs.WriteIntegerUnsigned(serial);
            using (tbs.PushSequence()) tbs.WriteObjectIdentifier(Ed25519Keys.Oid);
            tbs.WriteEncodedValue(issuer);
            using (tbs.PushSequence())
            {
                WriteTime(tbs, notBefore);
                WriteTime(tbs, notAfter);
            }
            tbs.WriteEncodedValue(subject);
            Ed25519Keys.WriteSubjectPublicKeyInfo(tbs, subjectKey);
            using (tbs.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 3, isConstructed: true)))
            using (tbs.PushSequence())
            {
                // keyUsage: bit 0 digitalSignature, bit 5 keyCertSign.
                var keyUsage = new AsnWriter(AsnEncodingRules.DER);
                if (isRoot) keyUsage.WriteBitString([0x84], unusedBitCount: 2);
                else keyUsage.WriteBitString([0x80], unusedBitCount: 7);
                WriteExtension(tbs, "2.5.29.15", critical: true, keyUsage.Encode());
                if (isRoot)
                {
                    var basicConstraints = new AsnWriter(AsnEncodingRules.DER);
                    using (basicConstraints.PushSequence()) basicConstraints.WriteBoolean(true);
                    WriteExtension(tbs, "2.5.29.19", critical: true, basicConstraints.Encode());
                    var ski = new AsnWriter(AsnEncodingRules.DER);
                    ski.WriteOctetString(issuerKeyId);
                    WriteExtension(tbs, "2.5.29.14", critical: false, ski.Encode());
                }
                else
                {
                    var aki = new AsnWriter(AsnEncodingRules.DER);
                    using (aki.PushSequence()) aki.WriteOctetString(issuerKeyId, new Asn1Tag(TagClass.ContextSpecific, 0));
                    WriteExtension(tbs, "2.5.29.35", critical: false, aki.Encode());
                }
                if (extendedKeyUsages is not null)
                {
                    var eku = new AsnWriter(AsnEncodingRules.DER);
                    using (eku.PushSequence())
                        foreach (string oid in extendedKeyUsages) eku.WriteObjectIdentifier(oid);
                    WriteExtension(tbs, "2.5.29.37", critical: false, eku.Encode());
                }
            }
        }
        byte[] tbsBytes = tbs.Encode();
        var certificate = new AsnWriter(AsnEncodingRules.DER);
        using (certificate.PushSequence())
        {
            certificate.WriteEncodedValue(tbsBytes);
            using (certificate.PushSequence()) certificate.WriteObjectIdentifier(Ed25519Keys.Oid);
            certificate.WriteBitString(Ed25519.Sign(signerKey, tbsBytes));
        }
        return certificate.Encode();
    }

    private static void WriteExtension(AsnWriter writer, string oid, bool critical, byte[] value)
    {
        using (writer.PushSequence())
        {
            writer.WriteObjectIdentifier(oid);
            if (critical) writer.WriteBoolean(true);
            writer.WriteOctetString(value);
        }
    }

    // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
    private static void WriteTime(AsnWriter writer, DateTimeOffset time)
    {
        time = new DateTimeOffset(time.UtcDateTime.Ticks - time.UtcDateTime.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
        if (time.Year < 2050) writer.WriteUtcTime(time);
        else writer.WriteGeneralizedTime(time, omitFractionalSeconds: true);
    }

    private static byte[] EncodeName(string commonName)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        using (writer.PushSetOf())
        using (writer.PushSequence())
        {
            writer.WriteObjectIdentifier("2.5.4.3");
            writer.WriteCharacterString(UniversalTagNumber.UTF8String, commonName);
        }
        return writer.Encode();
    }
}

using System.Formats.Asn1;
using System.Security.Cryptography;
using Tabula.Packaging.Crypto;

namespace Tabula.Packaging;

/// <summary>
/// An X.509 v3 certificate, parsed from DER with System.Formats.Asn1: only the fields that
/// chain checks need (RFC 5280 §4.1). Raw byte ranges are kept so a signature is checked over the
/// exact to-be-signed bytes and names are compared byte for byte, as Go's verifier does.
/// </summary>
public sealed class Certificate
{
    /// <summary>OID of the extended key usage serverAuth.</summary>
    public const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";
    /// <summary>OID of anyExtendedKeyUsage.</summary>
    public const string AnyExtendedKeyUsageOid = "2.5.29.37.0";

    /// <summary>The whole certificate as DER.</summary>
    public required byte[] Der { get; init; }
    /// <summary>The tbsCertificate bytes, which the issuer signed.</summary>
    public required ReadOnlyMemory<byte> TbsCertificate { get; init; }
    /// <summary>Raw DER of the issuer Name.</summary>
    public required ReadOnlyMemory<byte> Issuer { get; init; }
    /// <summary>Raw DER of the subject Name.</summary>
    public required ReadOnlyMemory<byte> Subject { get; init; }
    /// <summary>The subject's common name, if any (stmgr puts the key hash there).</summary>
    public string? CommonName { get; init; }
    /// <summary>Serial number, big-endian as encoded.</summary>
    public required byte[] SerialNumber { get; init; }
    /// <summary>Start of validity.</summary>
    public required DateTimeOffset NotBefore { get; init; }
    /// <summary>End of validity (inclusive).</summary>
    public required DateTimeOffset NotAfter { get; init; }
    /// <summary>The DER SubjectPublicKeyInfo.</summary>
    public required byte[] SubjectPublicKeyInfo { get; init; }
    /// <summary>OID of the subject key algorithm.</summary>
    public required string PublicKeyAlgorithm { get; init; }
    /// <summary>The subject public key bit string (the raw key for Ed25519).</summary>
    public required byte[] PublicKey { get; init; }
    /// <summary>OID of the algorithm the issuer signed with.</summary>
    public required string SignatureAlgorithm { get; init; }
    /// <summary>The issuer's signature over <see cref="TbsCertificate"/>.</summary>
    public required byte[] Signature { get; init; }
    /// <summary>basicConstraints cA, false when the extension is absent.</summary>
    public bool IsCertificateAuthority { get; init; }
    /// <summary>KeyUsage bits as in RFC 5280 (bit 0 = digitalSignature …), null when absent.</summary>
    public X509KeyUsage? KeyUsage { get; init; }
    /// <summary>Extended key usage OIDs; null when the extension is absent (which Go treats as "any").</summary>
    public IReadOnlyList<string>? ExtendedKeyUsages { get; init; }

    /// <summary>True when the subject key is Ed25519, the only key type that may sign OS packages.</summary>
    public bool HasEd25519Key => PublicKeyAlgorithm == Ed25519Keys.Oid && PublicKey.Length == Ed25519.PublicKeySize;

    /// <summary>SHA-256 of the raw public key, hex: how we name a signer in output (stable across re-issued certificates).</summary>
    public string PublicKeySha256Hex => Hex.Encode(SHA256.HashData(PublicKey));

    /// <summary>True when the validity period contains <paramref name="at"/> (both ends inclusive, as Go).</summary>
    public bool IsValidAt(DateTimeOffset at) => at >= NotBefore && at <= NotAfter;

    /// <summary>
    /// Go's EKU rule with the default usage serverAuth: no EKU extension passes; otherwise it must
    /// list serverAuth or anyExtendedKeyUsage. stboot inherits this quirk (a codeSigning-only leaf fails).
    /// </summary>
    public bool PermitsServerAuth =>
        ExtendedKeyUsages is null
        || ExtendedKeyUsages.Contains(ServerAuthOid)
        || ExtendedKeyUsages.Contains(AnyExtendedKeyUsageOid);

    /// <summary>Parses one DER certificate or throws <see cref="PackageFormatException"/> (InvalidDer).</summary>
    public static Certificate Parse(ReadOnlySpan<byte> der)
    {
        PackageFormatException.ThrowIfTooLarge(der.Length, Limits.MaxCertificateBytes, "certificate");
        try
        {
            return ParseDer(der.ToArray());
        }
        catch (AsnContentException e)
        {
            return PackageFormatException.Throw<Certificate>(FormatError.InvalidDer, $"certificate DER is malformed: {e.Message}", e);
        }
        catch (CryptographicException e)
        {
            return PackageFormatException.Throw<Certificate>(FormatError.InvalidDer, $"certificate DER is malformed: {e.Message}", e);
        }
    }

    /// <summary>Every CERTIFICATE block of a PEM file, parsed; other block types are skipped.</summary>
    public static IReadOnlyList<Certificate> ParsePemBundle(ReadOnlySpan<byte> pemUtf8)
    {
        var certificates = new List<Certificate>();
        foreach (var block in Pem.ReadAll(pemUtf8))
            if (block.Label == "CERTIFICATE")
                certificates.Add(Parse(block.Der));
        if (certificates.Count == 0)
            PackageFormatException.Throw(FormatError.InvalidPem, "no CERTIFICATE block found");
        return certificates;
    }

    /// <summary>
    /// Certificates written back to back as DER, how stboot measures its signing and TLS roots (PCR 13 SigningRoot and
    /// HTTPSRoot events: each root's DER in file order, concatenated). Empty input is no certificate. At most
    /// <see cref="Limits.MaxPemBlocks"/> certificates in <see cref="Limits.MaxPemBytes"/>; anything else throws
    /// <see cref="PackageFormatException"/> (TooLarge, InvalidDer).
    /// </summary>
    public static IReadOnlyList<Certificate> ParseDerConcatenation(ReadOnlySpan<byte> der)
    {
        PackageFormatException.ThrowIfTooLarge(der.Length, Limits.MaxPemBytes, "concatenated certificates");
        var certificates = new List<Certificate>();
        while (!der.IsEmpty)
        {
            if (certificates.Count == Limits.MaxPemBlocks)
                PackageFormatException.Throw(FormatError.TooLarge, $"more than {Limits.MaxPemBlocks} concatenated certificates");
            int length;
            try
            {
                AsnDecoder.ReadEncodedValue(der, AsnEncodingRules.DER, out _, out _, out length);
            }
            catch (AsnContentException e)
            {
                return PackageFormatException.Throw<IReadOnlyList<Certificate>>(FormatError.InvalidDer,
                    $"concatenated certificates: certificate {certificates.Count} is not DER: {e.Message}", e);
            }
            certificates.Add(Parse(der[..length]));
            der = der[length..];
        }
        return certificates;
    }

    private static Certificate ParseDer(byte[] der)
    {
        var (tbsBytes, tbs, signatureAlgorithm, signature) = ReadSignedEnvelope(der);
        int version = ReadVersion(tbs);
        byte[] serial = tbs.ReadIntegerBytes().ToArray();
        string innerSignatureAlgorithm = ReadAlgorithm(tbs, out _);
        if (innerSignatureAlgorithm != signatureAlgorithm)
            PackageFormatException.Throw(FormatError.InvalidDer, "certificate signature algorithm differs inside and outside tbsCertificate");
        ReadOnlyMemory<byte> issuer = tbs.PeekEncodedValue();
        tbs.ReadSequence();
        var validity = tbs.ReadSequence();
        DateTimeOffset notBefore = ReadTime(validity);
        DateTimeOffset notAfter = ReadTime(validity);
        validity.ThrowIfNotEmpty();
        ReadOnlyMemory<byte> subject = tbs.PeekEncodedValue();
        string? commonName = ReadCommonName(tbs.ReadSequence());
        byte[] spki = tbs.PeekEncodedValue().ToArray();
        var spkiReader = tbs.ReadSequence();
        string keyAlgorithm = ReadAlgorithm(spkiReader, out _);
        byte[] publicKey = spkiReader.ReadBitString(out _);
        spkiReader.ThrowIfNotEmpty();

        // issuerUniqueID [1] and subjectUniqueID [2] are obsolete; skip them.
        foreach (int tag in (ReadOnlySpan<int>)[1, 2])
            if (tbs.HasData && tbs.PeekTag().HasSameClassAndValue(new Asn1Tag(TagClass.ContextSpecific, tag)))
                tbs.ReadEncodedValue();
        var extensions = tbs.HasData ? ReadExtensions(tbs, version) : default;

        return new Certificate
        {
            Der = der,
            TbsCertificate = tbsBytes,
            Issuer = issuer,
            Subject = subject,
            CommonName = commonName,
            SerialNumber = serial,
            NotBefore = notBefore,
            NotAfter = notAfter,
            SubjectPublicKeyInfo = spki,
            PublicKeyAlgorithm = keyAlgorithm,
            PublicKey = publicKey,
            SignatureAlgorithm = signatureAlgorithm,
            Signature = signature,
            IsCertificateAuthority = extensions.IsCa,
            KeyUsage = extensions.KeyUsage,
            ExtendedKeyUsages = extensions.ExtendedKeyUsages,
        };
    }

    /// <summary>Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }, nothing after it.</summary>
    private static (ReadOnlyMemory<byte> TbsBytes, AsnReader Tbs, string SignatureAlgorithm, byte[] Signature) ReadSignedEnvelope(byte[] der)
    {
        var outer = new AsnReader(der, AsnEncodingRules.DER);
        var certificate = outer.ReadSequence();
        if (outer.HasData)
            PackageFormatException.Throw(FormatError.InvalidDer, "certificate has trailing bytes after its DER");

        ReadOnlyMemory<byte> tbsBytes = certificate.PeekEncodedValue();
        var tbs = certificate.ReadSequence();
        string signatureAlgorithm = ReadAlgorithm(certificate, out _);
        byte[] signature = certificate.ReadBitString(out int unused);
        if (unused != 0)
            PackageFormatException.Throw(FormatError.InvalidDer, "certificate signature bit string is not byte aligned");
        certificate.ThrowIfNotEmpty();
        return (tbsBytes, tbs, signatureAlgorithm, signature);
    }

    /// <summary>The explicit [0] version: 0, 1 or 2 (v1 to v3); absent means v1.</summary>
    private static int ReadVersion(AsnReader tbs)
    {
        int version = 0;
        if (tbs.PeekTag().HasSameClassAndValue(new Asn1Tag(TagClass.ContextSpecific, 0)))
        {
            var explicitVersion = tbs.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true));
            if (!explicitVersion.TryReadInt32(out version) || version is < 0 or > 2)
                PackageFormatException.Throw(FormatError.InvalidDer, "certificate version is not v1, v2 or v3");
        }
        return version;
    }

    /// <summary>What the extensions say that we use.</summary>
    private readonly record struct ExtensionValues(bool IsCa, X509KeyUsage? KeyUsage, List<string>? ExtendedKeyUsages);

    /// <summary>The [3] extensions (v3 only): each at most once, unknown critical ones refused as Go does.</summary>
    private static ExtensionValues ReadExtensions(AsnReader tbs, int version)
    {
        if (version != 2)
            PackageFormatException.Throw(FormatError.InvalidDer, "certificate has extensions but is not v3");
        bool isCa = false;
        X509KeyUsage? keyUsage = null;
        List<string>? eku = null;
        var extensions = tbs.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 3, isConstructed: true)).ReadSequence();
        var seen = new HashSet<string>();
        while (extensions.HasData)
        {
            var extension = extensions.ReadSequence();
            string oid = extension.ReadObjectIdentifier();
            bool critical = false;
            if (extension.PeekTag().HasSameClassAndValue(Asn1Tag.Boolean))
                critical = extension.ReadBoolean();
            byte[] value = extension.ReadOctetString();
            extension.ThrowIfNotEmpty();
            if (!seen.Add(oid))
                PackageFormatException.Throw(FormatError.InvalidDer, $"certificate repeats extension {oid}");
            var valueReader = new AsnReader(value, AsnEncodingRules.DER);
            switch (oid)
            {
                case "2.5.29.19": // basicConstraints
                    var bc = valueReader.ReadSequence();
                    if (bc.HasData && bc.PeekTag().HasSameClassAndValue(Asn1Tag.Boolean)) isCa = bc.ReadBoolean();
                    break;
                case "2.5.29.15": // keyUsage
                    keyUsage = (X509KeyUsage)ReadKeyUsage(valueReader);
                    break;
                case "2.5.29.37": // extKeyUsage
                    eku = [];
                    var list = valueReader.ReadSequence();
                    while (list.HasData) eku.Add(list.ReadObjectIdentifier());
                    break;
                case "2.5.29.14": case "2.5.29.35": case "2.5.29.17": case "2.5.29.30": case "2.5.29.32": case "2.5.29.31": case "1.3.6.1.5.5.7.1.1":
                    break; // SKI, AKI, SAN, name constraints, policies, CRL DP, AIA: known, not needed here
                default:
                    // Go's verifier refuses unhandled critical extensions; so do we.
                    if (critical)
                        PackageFormatException.Throw(FormatError.InvalidDer, $"certificate has an unknown critical extension {oid}");
                    break;
            }
        }
        return new ExtensionValues(isCa, keyUsage, eku);
    }

    private static int ReadKeyUsage(AsnReader reader)
    {
        byte[] bits = reader.ReadBitString(out _);
        // RFC 5280 numbers bits from the most significant bit of the first byte.
        int usage = 0;
        for (int i = 0; i < Math.Min(bits.Length * 8, 9); i++)
            if ((bits[i / 8] & (0x80 >> (i % 8))) != 0) usage |= 1 << i;
        return usage;
    }

    private static string ReadAlgorithm(AsnReader reader, out ReadOnlyMemory<byte>? parameters)
    {
        var alg = reader.ReadSequence();
        string oid = alg.ReadObjectIdentifier();
        parameters = alg.HasData ? alg.ReadEncodedValue() : null;
        alg.ThrowIfNotEmpty();
        return oid;
    }

    private static DateTimeOffset ReadTime(AsnReader reader)
    {
        Asn1Tag tag = reader.PeekTag();
        if (tag.HasSameClassAndValue(Asn1Tag.UtcTime)) return reader.ReadUtcTime(twoDigitYearMax: 2049);
        if (tag.HasSameClassAndValue(Asn1Tag.GeneralizedTime)) return reader.ReadGeneralizedTime();
        return PackageFormatException.Throw<DateTimeOffset>(FormatError.InvalidDer, "certificate validity time is neither UTCTime nor GeneralizedTime");
    }

    private static string? ReadCommonName(AsnReader name)
    {
        string? cn = null;
        while (name.HasData)
        {
            var rdn = name.ReadSetOf();
            while (rdn.HasData)
            {
                var attribute = rdn.ReadSequence();
                string oid = attribute.ReadObjectIdentifier();
                if (oid == "2.5.4.3")
                {
                    Asn1Tag tag = attribute.PeekTag();
                    cn = tag.TagValue switch
                    {
                        (int)UniversalTagNumber.UTF8String => attribute.ReadCharacterString(UniversalTagNumber.UTF8String),
                        (int)UniversalTagNumber.PrintableString => attribute.ReadCharacterString(UniversalTagNumber.PrintableString),
                        _ => null,
                    };
                    if (cn is null) attribute.ReadEncodedValue();
                }
                else attribute.ReadEncodedValue();
            }
        }
        return cn;
    }
}

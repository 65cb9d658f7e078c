using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Tabula.Attestation.Tpm;

/// <summary>
/// A key's TPMT_PUBLIC as a verifier reads it (part 2, 12.2.4): RSA or ECC, its name algorithm, attributes, and the public
/// key. <see cref="Name"/> is the TPM's name of the object (nameAlg ‖ H(TPMT_PUBLIC)), what credential activation and the
/// quote's qualifiedSigner name it by.
/// </summary>
public sealed class TpmPublicArea
{
    /// <summary>objectAttributes bits (part 2, 8.3).</summary>
    public const uint FixedTpm = 1u << 1, FixedParent = 1u << 4, SensitiveDataOrigin = 1u << 5, Restricted = 1u << 16, Sign = 1u << 18;

    TpmPublicArea(byte[] bytes, ushort type, ushort nameAlg, uint attributes, byte[]? modulus, uint exponent, ushort curve, byte[]? x, byte[]? y)
    {
        Bytes = bytes;
        Type = type;
        NameAlg = nameAlg;
        Attributes = attributes;
        Modulus = modulus;
        Exponent = exponent;
        Curve = curve;
        X = x;
        Y = y;
        byte[] digest = nameAlg switch
        {
            TpmAlg.Sha256 => SHA256.HashData(bytes),
            TpmAlg.Sha384 => SHA384.HashData(bytes),
            _ => throw new TpmFormatException($"TPMT_PUBLIC: name algorithm 0x{nameAlg:x4} is not SHA-256 or SHA-384"),
        };
        Name = [(byte)(nameAlg >> 8), (byte)nameAlg, .. digest];
    }

    /// <summary>The TPMT_PUBLIC bytes as received.</summary>
    public byte[] Bytes { get; }
    /// <summary>TPM_ALG_RSA or TPM_ALG_ECC.</summary>
    public ushort Type { get; }
    /// <summary>The name algorithm (SHA-256 or SHA-384).</summary>
    public ushort NameAlg { get; }
    /// <summary>objectAttributes.</summary>
    public uint Attributes { get; }
    byte[]? Modulus { get; }
    uint Exponent { get; }
    ushort Curve { get; }
    byte[]? X { get; }
    byte[]? Y { get; }

    /// <summary>The object's name: nameAlg (2 bytes) ‖ H_nameAlg(TPMT_PUBLIC).</summary>
    public byte[] Name { get; }

    /// <summary>An attestation key as Tabula wants one: made in this TPM (fixedTPM, fixedParent, sensitiveDataOrigin), restricted
    /// to signing TPM-made structures, so it cannot sign a forged TPMS_ATTEST.</summary>
    public bool IsRestrictedSigningKeyOfThisTpm =>
        (Attributes & (FixedTpm | FixedParent | SensitiveDataOrigin | Restricted | Sign)) == (FixedTpm | FixedParent | SensitiveDataOrigin | Restricted | Sign);

    /// <summary>The key as a <see cref="PublicKey"/> (for certificates).</summary>
    public PublicKey ToPublicKey()
    {
        if (Type == TpmAlg.Rsa)
        {
            using var rsa = ToRsa();
            return new PublicKey(rsa);
        }
        using var ecdsa = ToEcdsa();
        return new PublicKey(ecdsa);
    }

    /// <summary>The RSA key (the caller disposes it).</summary>
    public RSA ToRsa() => Type == TpmAlg.Rsa
        ? RSA.Create(new RSAParameters { Modulus = Modulus, Exponent = ExponentBytes(Exponent) })
        : throw new TpmFormatException("TPMT_PUBLIC: not an RSA key");

    /// <summary>The ECDSA key (the caller disposes it).</summary>
    public ECDsa ToEcdsa() => Type == TpmAlg.Ecc
        ? ECDsa.Create(new ECParameters
        {
            Curve = Curve == TpmAlg.EccNistP256 ? ECCurve.NamedCurves.nistP256 : ECCurve.NamedCurves.nistP384,
            Q = new ECPoint { X = X, Y = Y },
        })
        : throw new TpmFormatException("TPMT_PUBLIC: not an ECC key");

    static byte[] ExponentBytes(uint exponent)
    {
        uint e = exponent == 0 ? 65537u : exponent;
        var bytes = new List<byte>();
        for (int shift = 24; shift >= 0; shift -= 8)
            if (bytes.Count > 0 || (byte)(e >> shift) != 0) bytes.Add((byte)(e >> shift));
        return [.. bytes];
    }

    /// <summary>Reads a TPMT_PUBLIC (no TPM2B size in front); RSA or ECC (NIST P-256/P-384), SHA-256 or SHA-384 name.</summary>
    public static TpmPublicArea Parse(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > TpmVerifierLimits.MaxStructure)
            throw new TpmFormatException($"TPMT_PUBLIC: {bytes.Length} bytes, at most {TpmVerifierLimits.MaxStructure}");
        var r = new TpmBytes(bytes, "TPMT_PUBLIC");
        ushort type = r.U16("type");
        ushort nameAlg = r.U16("nameAlg");
        uint attributes = r.U32("objectAttributes");
        r.Sized("authPolicy", TpmVerifierLimits.MaxDigest);
        ushort symmetric = r.U16("symmetric.algorithm");
        if (symmetric != TpmAlg.Null)
        {
            r.U16("symmetric.keyBits");
            r.U16("symmetric.mode");
        }
        ushort scheme = r.U16("scheme");
        byte[]? modulus = null, x = null, y = null;
        uint exponent = 0;
        ushort curve = 0;
        switch (type)
        {
            case TpmAlg.Rsa:
                if (scheme != TpmAlg.Null) r.U16("scheme.hashAlg");
                ushort keyBits = r.U16("keyBits");
                exponent = r.U32("exponent");
                modulus = r.Sized("unique.rsa", TpmVerifierLimits.MaxRsaBytes).ToArray();
                if (modulus.Length * 8 != keyBits || keyBits < 2048)
                    throw new TpmFormatException($"TPMT_PUBLIC: an RSA modulus of {modulus.Length * 8} bits for keyBits {keyBits} (2048 at least)");
                break;
            case TpmAlg.Ecc:
                if (scheme != TpmAlg.Null)
                {
                    r.U16("scheme.hashAlg");
                    if (scheme == TpmAlg.Ecdaa) r.U16("scheme.count");
                }
                curve = r.U16("curveID");
                if (r.U16("kdf.scheme") != TpmAlg.Null) r.U16("kdf.hashAlg");
                x = r.Sized("unique.x", TpmVerifierLimits.MaxEccCoordinate).ToArray();
                y = r.Sized("unique.y", TpmVerifierLimits.MaxEccCoordinate).ToArray();
                int size = curve switch
                {
                    TpmAlg.EccNistP256 => 32,
                    TpmAlg.EccNistP384 => 48,
                    _ => throw new TpmFormatException($"TPMT_PUBLIC: curve 0x{curve:x4} is not NIST P-256 or P-384"),
                };
                if (x.Length != size || y.Length != size) throw new TpmFormatException("TPMT_PUBLIC: an ECC point of the wrong size");
                break;
            default:
                throw new TpmFormatException($"TPMT_PUBLIC: type 0x{type:x4} is not RSA or ECC");
        }
        r.End();
        return new TpmPublicArea(bytes.ToArray(), type, nameAlg, attributes, modulus, exponent, curve, x, y);
    }
}

using System.Security.Cryptography;

namespace Tabula.Tpm;

/// <summary>TPMA_OBJECT (part 2, 8.3).</summary>
[Flags]
public enum TpmObjectAttributes : uint
{
    /// <summary>No attribute.</summary>
    None = 0,
    /// <summary>fixedTPM: the object cannot leave this TPM.</summary>
    FixedTpm = 0x00000002,
    /// <summary>stClear.</summary>
    StClear = 0x00000004,
    /// <summary>fixedParent.</summary>
    FixedParent = 0x00000010,
    /// <summary>sensitiveDataOrigin: the TPM made the private part.</summary>
    SensitiveDataOrigin = 0x00000020,
    /// <summary>userWithAuth: USER role by authValue.</summary>
    UserWithAuth = 0x00000040,
    /// <summary>adminWithPolicy: ADMIN role only by policy.</summary>
    AdminWithPolicy = 0x00000080,
    /// <summary>noDA: exempt from dictionary-attack lockout.</summary>
    NoDa = 0x00000400,
    /// <summary>encryptedDuplication.</summary>
    EncryptedDuplication = 0x00000800,
    /// <summary>restricted: signs only TPM-made data (or decrypts only TPM formats).</summary>
    Restricted = 0x00010000,
    /// <summary>decrypt.</summary>
    Decrypt = 0x00020000,
    /// <summary>sign (sign/encrypt).</summary>
    Sign = 0x00040000,
}

/// <summary>TPM_ECC_CURVE values this library handles.</summary>
public enum TpmEccCurve : ushort
{
    /// <summary>TPM_ECC_NONE.</summary>
    None = 0x0000,
    /// <summary>TPM_ECC_NIST_P256.</summary>
    NistP256 = 0x0003,
    /// <summary>TPM_ECC_NIST_P384.</summary>
    NistP384 = 0x0004,
    /// <summary>TPM_ECC_NIST_P521.</summary>
    NistP521 = 0x0005,
}

/// <summary>
/// TPMT_PUBLIC for RSA and ECC keys (part 2, 12.2.4): the public area a TPM creates an object from and returns for
/// it. One record for both types: the RSA fields are empty for ECC and the other way round. <see cref="Encoded"/>
/// is the marshaled area (what the object's name hashes), kept byte for byte when it was parsed.
/// </summary>
public sealed record TpmPublic
{
    /// <summary>TPM_ALG_RSA or TPM_ALG_ECC.</summary>
    public required TpmAlgorithm Type { get; init; }
    /// <summary>The hash of the object's name (and of its policy).</summary>
    public required TpmAlgorithm NameAlg { get; init; }
    /// <summary>TPMA_OBJECT.</summary>
    public required TpmObjectAttributes Attributes { get; init; }
    /// <summary>The policy digest that authorizes the ADMIN role (and USER without userWithAuth); empty for none.</summary>
    public byte[] AuthPolicy { get; init; } = [];
    /// <summary>The symmetric algorithm of a storage key (TPM_ALG_AES), or TPM_ALG_NULL.</summary>
    public TpmAlgorithm Symmetric { get; init; } = TpmAlgorithm.Null;
    /// <summary>The symmetric key size in bits (128 for the EK).</summary>
    public int SymmetricKeyBits { get; init; }
    /// <summary>The symmetric mode (TPM_ALG_CFB).</summary>
    public TpmAlgorithm SymmetricMode { get; init; } = TpmAlgorithm.Null;
    /// <summary>The signing or decryption scheme (RSASSA, RSAPSS, ECDSA…), or TPM_ALG_NULL.</summary>
    public TpmAlgorithm Scheme { get; init; } = TpmAlgorithm.Null;
    /// <summary>The scheme's hash, when the scheme has one.</summary>
    public TpmAlgorithm SchemeHash { get; init; } = TpmAlgorithm.Null;
    /// <summary>RSA: modulus size in bits.</summary>
    public int RsaKeyBits { get; init; }
    /// <summary>RSA: the public exponent; 0 means 65537.</summary>
    public uint RsaExponent { get; init; }
    /// <summary>RSA: the modulus (empty in a template).</summary>
    public byte[] RsaModulus { get; init; } = [];
    /// <summary>ECC: the curve.</summary>
    public TpmEccCurve Curve { get; init; }
    /// <summary>ECC: the KDF scheme, TPM_ALG_NULL for the keys we make.</summary>
    public TpmAlgorithm Kdf { get; init; } = TpmAlgorithm.Null;
    /// <summary>ECC: the public point's x (all zeros in an EK template).</summary>
    public byte[] EccX { get; init; } = [];
    /// <summary>ECC: the public point's y.</summary>
    public byte[] EccY { get; init; } = [];

    byte[]? encoded;

    /// <summary>Creates an empty public area (set the required members).</summary>
    public TpmPublic() { }

    /// <summary>
    /// The copy <c>with</c> makes: every field but the cached encoding, so a changed copy never reports the
    /// original's bytes or name.
    /// </summary>
    [System.Diagnostics.CodeAnalysis.SetsRequiredMembers]
    private TpmPublic(TpmPublic original)
    {
        Type = original.Type; NameAlg = original.NameAlg; Attributes = original.Attributes; AuthPolicy = original.AuthPolicy;
        Symmetric = original.Symmetric; SymmetricKeyBits = original.SymmetricKeyBits; SymmetricMode = original.SymmetricMode;
        Scheme = original.Scheme; SchemeHash = original.SchemeHash; RsaKeyBits = original.RsaKeyBits;
        RsaExponent = original.RsaExponent; RsaModulus = original.RsaModulus; Curve = original.Curve; Kdf = original.Kdf;
        EccX = original.EccX; EccY = original.EccY;
    }

    /// <summary>The marshaled TPMT_PUBLIC: the parsed bytes, or this record written out.</summary>
    public byte[] Encoded
    {
        get
        {
            if (encoded is null)
            {
                var buffer = new byte[TpmLimits.MaxMessageBytes];
                var w = new TpmWriter(buffer);
                WriteTo(ref w);
                encoded = w.Written.ToArray();
            }
            return encoded;
        }
    }

    /// <summary>The object's name: nameAlg, then the nameAlg digest of <see cref="Encoded"/> (part 1, 16).</summary>
    public byte[] Name
    {
        get
        {
            byte[] digest = TpmCrypto.Hash(NameAlg, Encoded);
            var name = new byte[2 + digest.Length];
            name[0] = (byte)((ushort)NameAlg >> 8);
            name[1] = (byte)NameAlg;
            digest.CopyTo(name, 2);
            return name;
        }
    }

    /// <summary>Writes TPMT_PUBLIC.</summary>
    public void WriteTo(ref TpmWriter w)
    {
        w.WriteUInt16((ushort)Type);
        w.WriteUInt16((ushort)NameAlg);
        w.WriteUInt32((uint)Attributes);
        w.WriteTpm2B(AuthPolicy);
        w.WriteUInt16((ushort)Symmetric);
        if (Symmetric != TpmAlgorithm.Null)
        {
            w.WriteUInt16((ushort)SymmetricKeyBits);
            w.WriteUInt16((ushort)SymmetricMode);
        }
        w.WriteUInt16((ushort)Scheme);
        if (Scheme is not (TpmAlgorithm.Null or TpmAlgorithm.RsaEs))   // RSAES-PKCS1-v1_5 has no hash (part 2, 11.2.3.1)
            w.WriteUInt16((ushort)SchemeHash);
        switch (Type)
        {
            case TpmAlgorithm.Rsa:
                w.WriteUInt16((ushort)RsaKeyBits);
                w.WriteUInt32(RsaExponent);
                w.WriteTpm2B(RsaModulus);
                break;
            case TpmAlgorithm.Ecc:
                w.WriteUInt16((ushort)Curve);
                w.WriteUInt16((ushort)Kdf);
                if (Kdf != TpmAlgorithm.Null)
                    throw new ArgumentException("only TPM_ALG_NULL KDFs are written");
                w.WriteTpm2B(EccX);
                w.WriteTpm2B(EccY);
                break;
            default:
                throw new ArgumentException($"{Type} objects are not written by this library");
        }
    }

    /// <summary>Reads a TPM2B_PUBLIC.</summary>
    public static TpmPublic ReadSized(ref TpmReader r)
    {
        var inner = r.ReadTpm2B(TpmLimits.MaxTpm2BBytes, "TPM2B_PUBLIC");
        if (inner.IsEmpty)
            TpmFormatException.Throw(TpmFormatError.SizeMismatch, "TPM2B_PUBLIC (empty)");
        return Parse(inner);
    }

    /// <summary>Parses a TPMT_PUBLIC that must fill <paramref name="bytes"/> (an RSA or ECC key).</summary>
    public static TpmPublic Parse(ReadOnlySpan<byte> bytes)
    {
        var r = new TpmReader(bytes);
        var type = (TpmAlgorithm)r.ReadUInt16("TPMT_PUBLIC.type");
        if (type is not (TpmAlgorithm.Rsa or TpmAlgorithm.Ecc))
            TpmFormatException.Throw(TpmFormatError.UnsupportedAlgorithm, "TPMT_PUBLIC.type");
        var nameAlg = (TpmAlgorithm)r.ReadUInt16("TPMT_PUBLIC.nameAlg");
        if (TpmHash.DigestSize(nameAlg) == 0 || nameAlg == TpmAlgorithm.Sm3_256)
            TpmFormatException.Throw(TpmFormatError.UnsupportedAlgorithm, "TPMT_PUBLIC.nameAlg");
        var attributes = (TpmObjectAttributes)r.ReadUInt32("TPMT_PUBLIC.objectAttributes");
        byte[] policy = r.ReadTpm2B(TpmLimits.MaxDigestBytes, "TPMT_PUBLIC.authPolicy").ToArray();
        var symmetric = (TpmAlgorithm)r.ReadUInt16("TPMT_SYM_DEF_OBJECT.algorithm");
        int symBits = 0;
        var symMode = TpmAlgorithm.Null;
        if (symmetric != TpmAlgorithm.Null)
        {
            if (symmetric != TpmAlgorithm.Aes)
                TpmFormatException.Throw(TpmFormatError.UnsupportedAlgorithm, "TPMT_SYM_DEF_OBJECT.algorithm");
            symBits = r.ReadUInt16("TPMT_SYM_DEF_OBJECT.keyBits");
            symMode = (TpmAlgorithm)r.ReadUInt16("TPMT_SYM_DEF_OBJECT.mode");
        }
        var scheme = (TpmAlgorithm)r.ReadUInt16("TPMT_PUBLIC scheme");
        var schemeHash = TpmAlgorithm.Null;
        switch (scheme)
        {
            case TpmAlgorithm.Null or TpmAlgorithm.RsaEs:
                break;
            case TpmAlgorithm.RsaSsa or TpmAlgorithm.RsaPss or TpmAlgorithm.Oaep or TpmAlgorithm.Ecdsa or TpmAlgorithm.Ecdh:
                schemeHash = (TpmAlgorithm)r.ReadUInt16("TPMT_PUBLIC scheme.hashAlg");
                break;
            default:
                TpmFormatException.Throw(TpmFormatError.UnsupportedAlgorithm, "TPMT_PUBLIC scheme");
                break;
        }
        if (type == TpmAlgorithm.Rsa)
        {
            if (scheme is TpmAlgorithm.Ecdsa or TpmAlgorithm.Ecdh)
                TpmFormatException.Throw(TpmFormatError.UnsupportedAlgorithm, "TPMT_RSA_SCHEME");
            int bits = r.ReadUInt16("TPMS_RSA_PARMS.keyBits");
            uint exponent = r.ReadUInt32("TPMS_RSA_PARMS.exponent");
            byte[] modulus = r.ReadTpm2B(TpmLimits.MaxRsaKeyBytes, "TPM2B_PUBLIC_KEY_RSA").ToArray();
            if (modulus.Length != 0 && modulus.Length * 8 != bits)
                TpmFormatException.Throw(TpmFormatError.SizeMismatch, "TPM2B_PUBLIC_KEY_RSA (not keyBits long)");
            r.ExpectEnd("TPMT_PUBLIC");
            return new TpmPublic
            {
                Type = type, NameAlg = nameAlg, Attributes = attributes, AuthPolicy = policy, Symmetric = symmetric,
                SymmetricKeyBits = symBits, SymmetricMode = symMode, Scheme = scheme, SchemeHash = schemeHash,
                RsaKeyBits = bits, RsaExponent = exponent, RsaModulus = modulus, encoded = bytes.ToArray(),
            };
        }
        if (scheme is not (TpmAlgorithm.Null or TpmAlgorithm.Ecdsa or TpmAlgorithm.Ecdh))
            TpmFormatException.Throw(TpmFormatError.UnsupportedAlgorithm, "TPMT_ECC_SCHEME");
        var curve = (TpmEccCurve)r.ReadUInt16("TPMS_ECC_PARMS.curveID");
        var kdf = (TpmAlgorithm)r.ReadUInt16("TPMT_KDF_SCHEME.scheme");
        if (kdf != TpmAlgorithm.Null)
            TpmFormatException.Throw(TpmFormatError.UnsupportedAlgorithm, "TPMT_KDF_SCHEME.scheme");
        byte[] x = r.ReadTpm2B(TpmLimits.MaxEccKeyBytes, "TPMS_ECC_POINT.x").ToArray();
        byte[] y = r.ReadTpm2B(TpmLimits.MaxEccKeyBytes, "TPMS_ECC_POINT.y").ToArray();
        r.ExpectEnd("TPMT_PUBLIC");
        return new TpmPublic
        {
            Type = type, NameAlg = nameAlg, Attributes = attributes, AuthPolicy = policy, Symmetric = symmetric,
            SymmetricKeyBits = symBits, SymmetricMode = symMode, Scheme = scheme, SchemeHash = schemeHash,
            Curve = curve, Kdf = kdf, EccX = x, EccY = y, encoded = bytes.ToArray(),
        };
    }

    /// <summary>The RSA public key, for verifying and encrypting with System.Security.Cryptography.</summary>
    public RSA ToRsa()
    {
        if (Type != TpmAlgorithm.Rsa || RsaModulus.Length == 0)
            throw new TpmFormatException(TpmFormatError.UnsupportedAlgorithm, "TPMT_PUBLIC (not an RSA key)");
        uint e = RsaExponent == 0 ? 65537 : RsaExponent;
        byte[] exponent = e switch
        {
            < 0x100 => [(byte)e],
            < 0x10000 => [(byte)(e >> 8), (byte)e],
            < 0x1000000 => [(byte)(e >> 16), (byte)(e >> 8), (byte)e],
            _ => [(byte)(e >> 24), (byte)(e >> 16), (byte)(e >> 8), (byte)e],
        };
        return RSA.Create(new RSAParameters { Modulus = RsaModulus, Exponent = exponent });
    }

    /// <summary>The ECC public key, for verifying and key agreement with System.Security.Cryptography.</summary>
    public ECParameters ToEcParameters()
    {
        if (Type != TpmAlgorithm.Ecc || EccX.Length == 0)
            throw new TpmFormatException(TpmFormatError.UnsupportedAlgorithm, "TPMT_PUBLIC (not an ECC key)");
        var curve = Curve switch
        {
            TpmEccCurve.NistP256 => ECCurve.NamedCurves.nistP256,
            TpmEccCurve.NistP384 => ECCurve.NamedCurves.nistP384,
            TpmEccCurve.NistP521 => ECCurve.NamedCurves.nistP521,
            _ => throw new TpmFormatException(TpmFormatError.UnsupportedAlgorithm, "TPMS_ECC_PARMS.curveID"),
        };
        int size = TpmCrypto.CoordinateSize(Curve);
        if (EccX.Length > size || EccY.Length > size)
            throw new TpmFormatException(TpmFormatError.TooLarge, "TPMS_ECC_POINT (longer than the curve)");
        return new ECParameters { Curve = curve, Q = new ECPoint { X = TpmCrypto.LeftPad(EccX, size), Y = TpmCrypto.LeftPad(EccY, size) } };
    }
}

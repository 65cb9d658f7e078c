using System.Buffers.Binary;
using System.Numerics;
using System.Security.Cryptography;

namespace Tabula.Tpm;

/// <summary>
/// What MakeCredential gives a verifier to send to the TPM: <see cref="CredentialBlob"/> (TPM2B_ID_OBJECT contents:
/// integrity HMAC and encrypted credential) and <see cref="Secret"/> (TPM2B_ENCRYPTED_SECRET contents: the seed
/// encrypted to the EK).
/// </summary>
public sealed record MadeCredential(byte[] CredentialBlob, byte[] Secret);

/// <summary>
/// The verifier's half of credential activation (TPM 2.0 part 1, 24 "Credential Protection", and TPM2_MakeCredential
/// in part 3), in pure C#: a credential only the TPM holding <c>ek</c> can open, and only for an object named
/// <c>name</c> loaded in it. A controller uses it to prove an AK lives in the same TPM as an EK whose certificate it
/// checked, without a TPM of its own.
/// </summary>
public static class Credential
{
    /// <summary>
    /// Makes a credential holding <paramref name="credential"/> (at most the EK nameAlg's digest size, 32 bytes for
    /// SHA-256) for the object named <paramref name="name"/>, protected to <paramref name="ek"/> (a restricted
    /// decryption key: RSA seed by OAEP with label "IDENTITY", ECC seed by one-pass ECDH with KDFe).
    /// </summary>
    public static MadeCredential Make(TpmPublic ek, ReadOnlySpan<byte> name, ReadOnlySpan<byte> credential)
    {
        if (ek.Symmetric != TpmAlgorithm.Aes || ek.SymmetricMode != TpmAlgorithm.Cfb)
            throw new ArgumentException("the EK must be a storage key with AES-CFB", nameof(ek));
        int digestSize = TpmHash.DigestSize(ek.NameAlg);
        if (credential.Length > digestSize)
            throw new ArgumentException($"a credential is at most {digestSize} bytes", nameof(credential));
        byte[] seed, secret;
        switch (ek.Type)
        {
            case TpmAlgorithm.Rsa:
                seed = RandomNumberGenerator.GetBytes(digestSize);
                secret = RsaOaepEncrypt(ek, seed, "IDENTITY\0"u8);
                break;
            case TpmAlgorithm.Ecc:
                (seed, secret) = EcdhSeed(ek, "IDENTITY"u8);
                break;
            default:
                throw new ArgumentException($"{ek.Type} EKs are not supported", nameof(ek));
        }
        try
        {
            byte[] symKey = KdfA(ek.NameAlg, seed, "STORAGE"u8, name, [], ek.SymmetricKeyBits);
            // encIdentity: the credential as a TPM2B_DIGEST, AES-CFB with a zero IV.
            byte[] plain = new byte[2 + credential.Length];
            BinaryPrimitives.WriteUInt16BigEndian(plain, (ushort)credential.Length);
            credential.CopyTo(plain.AsSpan(2));
            byte[] encIdentity = AesCfbEncrypt(symKey, plain);
            byte[] hmacKey = KdfA(ek.NameAlg, seed, "INTEGRITY"u8, [], [], digestSize * 8);
            byte[] outerHmac = TpmCrypto.Hmac(ek.NameAlg, hmacKey, [.. encIdentity, .. name]);
            byte[] blob = new byte[2 + outerHmac.Length + encIdentity.Length];
            BinaryPrimitives.WriteUInt16BigEndian(blob, (ushort)outerHmac.Length);
            outerHmac.CopyTo(blob, 2);
            encIdentity.CopyTo(blob, 2 + outerHmac.Length);
            CryptographicOperations.ZeroMemory(symKey);
            CryptographicOperations.ZeroMemory(hmacKey);
            CryptographicOperations.ZeroMemory(plain);
            return new MadeCredential(blob, secret);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
        }
    }

    /// <summary>KDFa (part 1, 11.4.10.2): SP 800-108 counter mode with HMAC; the label is followed by a zero byte.</summary>
    public static byte[] KdfA(TpmAlgorithm hash, ReadOnlySpan<byte> key, ReadOnlySpan<byte> label, ReadOnlySpan<byte> contextU,
        ReadOnlySpan<byte> contextV, int bits)
    {
        int bytes = (bits + 7) / 8;
        var output = new byte[bytes];
        var message = new byte[4 + label.Length + 1 + contextU.Length + contextV.Length + 4];
        label.CopyTo(message.AsSpan(4));
        contextU.CopyTo(message.AsSpan(4 + label.Length + 1));
        contextV.CopyTo(message.AsSpan(4 + label.Length + 1 + contextU.Length));
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(message.Length - 4), (uint)bits);
        for (uint counter = 1, done = 0; done < bytes; counter++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(message, counter);
            byte[] block = TpmCrypto.Hmac(hash, key, message);
            int n = Math.Min(block.Length, bytes - (int)done);
            block.AsSpan(0, n).CopyTo(output.AsSpan((int)done));
            done += (uint)n;
        }
        return output;
    }

    /// <summary>KDFe (part 1, 11.4.10.3): SP 800-56A concatenation KDF over the shared x-coordinate.</summary>
    public static byte[] KdfE(TpmAlgorithm hash, ReadOnlySpan<byte> z, ReadOnlySpan<byte> label, ReadOnlySpan<byte> partyU,
        ReadOnlySpan<byte> partyV, int bits)
    {
        int bytes = (bits + 7) / 8;
        var output = new byte[bytes];
        var message = new byte[4 + z.Length + label.Length + 1 + partyU.Length + partyV.Length];
        z.CopyTo(message.AsSpan(4));
        label.CopyTo(message.AsSpan(4 + z.Length));
        partyU.CopyTo(message.AsSpan(4 + z.Length + label.Length + 1));
        partyV.CopyTo(message.AsSpan(4 + z.Length + label.Length + 1 + partyU.Length));
        for (uint counter = 1, done = 0; done < bytes; counter++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(message, counter);
            byte[] block = TpmCrypto.Hash(hash, message);
            int n = Math.Min(block.Length, bytes - (int)done);
            block.AsSpan(0, n).CopyTo(output.AsSpan((int)done));
            done += (uint)n;
        }
        CryptographicOperations.ZeroMemory(message);
        return output;
    }

    /// <summary>AES-CFB (full-block feedback, zero IV, no padding: a short last block is truncated), as the TPM uses it.</summary>
    internal static byte[] AesCfbEncrypt(byte[] key, ReadOnlySpan<byte> plain)
    {
        using var aes = Aes.Create();
        aes.Key = key;
        var output = new byte[plain.Length];
        Span<byte> feedback = stackalloc byte[16];
        Span<byte> stream = stackalloc byte[16];
        feedback.Clear();
        for (int offset = 0; offset < plain.Length; offset += 16)
        {
            aes.EncryptEcb(feedback, stream, PaddingMode.None);
            int n = Math.Min(16, plain.Length - offset);
            for (int i = 0; i < n; i++)
                output[offset + i] = (byte)(plain[offset + i] ^ stream[i]);
            if (n == 16)
                output.AsSpan(offset, 16).CopyTo(feedback);
        }
        return output;
    }

    /// <summary>
    /// RSAES-OAEP (PKCS#1 v2.2, 7.1.1) with the EK's nameAlg for the hash and MGF1, and a label, which the BCL's
    /// RSA.Encrypt cannot take (and it offers no raw RSA to put under our own padding): encoded here, then the
    /// public-key operation with <see cref="BigInteger.ModPow(BigInteger, BigInteger, BigInteger)"/>.
    /// </summary>
    /// <remarks>
    /// ModPow is not constant-time. The exponent and modulus are public, but the base is not: it is the OAEP encoding
    /// of the seed, and the seed keys the credential, so its timing depends on a secret. It is accepted (docs/tpm.md,
    /// "MakeCredential and timing"): it runs only on a verifier (the controller at enrollment, a customer's
    /// <c>relay attest</c>), once per challenge, on a seed and an OAEP mask that are fresh random bytes each time, so a
    /// relay timing the controller's answer over the network sees one noisy sample of a value it never sees again;
    /// and what the seed protects is a one-time secret that only proves where an AK lives for the one nonce it was
    /// made for. Nothing on a machine (stboot, the relay agent) runs it. The encoded block and the OAEP seed are cleared
    /// after use (the caller clears <paramref name="message"/>; BigInteger's own copies cannot be).
    /// </remarks>
    internal static byte[] RsaOaepEncrypt(TpmPublic ek, ReadOnlySpan<byte> message, ReadOnlySpan<byte> label)
    {
        int k = ek.RsaModulus.Length;
        int hLen = TpmHash.DigestSize(ek.NameAlg);
        if (k == 0 || message.Length > k - 2 * hLen - 2)
            throw new ArgumentException("message too long for the EK's modulus", nameof(message));
        var em = new byte[k];
        var seed = em.AsSpan(1, hLen);
        var db = em.AsSpan(1 + hLen);
        TpmCrypto.Hash(ek.NameAlg, label).CopyTo(db);
        db[db.Length - message.Length - 1] = 0x01;
        message.CopyTo(db[(db.Length - message.Length)..]);
        byte[] seedBytes = RandomNumberGenerator.GetBytes(hLen);
        Xor(db, Mgf1(ek.NameAlg, seedBytes, db.Length));
        seedBytes.CopyTo(seed);
        CryptographicOperations.ZeroMemory(seedBytes);
        Xor(seed, Mgf1(ek.NameAlg, db, hLen));

        var m = new BigInteger(em, isUnsigned: true, isBigEndian: true);
        var n = new BigInteger(ek.RsaModulus, isUnsigned: true, isBigEndian: true);
        var e = new BigInteger(ek.RsaExponent == 0 ? 65537u : ek.RsaExponent);
        var c = BigInteger.ModPow(m, e, n);
        CryptographicOperations.ZeroMemory(em);
        var output = new byte[k];
        byte[] cBytes = c.ToByteArray(isUnsigned: true, isBigEndian: true);
        cBytes.CopyTo(output, k - cBytes.Length);
        return output;
    }

    static byte[] Mgf1(TpmAlgorithm hash, ReadOnlySpan<byte> seed, int length)
    {
        var output = new byte[length];
        var input = new byte[seed.Length + 4];
        seed.CopyTo(input);
        for (uint counter = 0, done = 0; done < length; counter++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(input.AsSpan(seed.Length), counter);
            byte[] block = TpmCrypto.Hash(hash, input);
            int n = Math.Min(block.Length, length - (int)done);
            block.AsSpan(0, n).CopyTo(output.AsSpan((int)done));
            done += (uint)n;
        }
        return output;
    }

    static void Xor(Span<byte> target, ReadOnlySpan<byte> mask)
    {
        for (int i = 0; i < target.Length; i++)
            target[i] ^= mask[i];
    }

    /// <summary>One-pass ECDH (part 1, C.6.1): an ephemeral key on the EK's curve; the seed is KDFe over the shared x.</summary>
    static (byte[] Seed, byte[] Secret) EcdhSeed(TpmPublic ek, ReadOnlySpan<byte> label)
    {
        var ekParameters = ek.ToEcParameters();
        using var ephemeral = ECDiffieHellman.Create(ekParameters.Curve);
        using var peer = ECDiffieHellman.Create(ekParameters);
        byte[] z = ephemeral.DeriveRawSecretAgreement(peer.PublicKey);
        var q = ephemeral.ExportParameters(false).Q;
        int size = TpmCrypto.CoordinateSize(ek.Curve);
        byte[] seed = KdfE(ek.NameAlg, z, label, q.X, TpmCrypto.LeftPad(ek.EccX, size), TpmHash.DigestSize(ek.NameAlg) * 8);
        CryptographicOperations.ZeroMemory(z);
        var buffer = new byte[4 + q.X!.Length + q.Y!.Length];
        var w = new TpmWriter(buffer);
        w.WriteTpm2B(q.X);
        w.WriteTpm2B(q.Y);
        return (seed, buffer);
    }
}

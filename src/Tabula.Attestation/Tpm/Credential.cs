using System.Buffers.Binary;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;

namespace Tabula.Attestation.Tpm;

/// <summary>
/// TPM2_MakeCredential done by a verifier in software (part 1, 24 "Credential Protection"; part 3, 12.6): a secret that only
/// the TPM holding the EK's private key can recover, and only for an object with the given name (the AK), via
/// TPM2_ActivateCredential. For an RSA EK with the TCG's default template (RSA-2048, AES-128-CFB, SHA-256 name algorithm):
/// a random seed is RSA-OAEP encrypted to the EK with label "IDENTITY"; the seed derives (KDFa) the AES key that encrypts
/// the secret ("STORAGE", context the AK's name) and the HMAC key ("INTEGRITY") of the outer integrity over it and the name.
/// </summary>
public static class Credential
{
    /// <summary>The secret's size: 32 bytes (fits TPM2B_DIGEST of SHA-256).</summary>
    public const int SecretBytes = 32;

    /// <summary>Makes a challenge for <paramref name="secret"/>: the TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET contents.</summary>
    public static (byte[] CredentialBlob, byte[] EncryptedSecret) Make(RSA ekPublic, ReadOnlySpan<byte> akName, ReadOnlySpan<byte> secret)
    {
        if (secret.Length is 0 or > SecretBytes) throw new ArgumentException($"a credential is 1-{SecretBytes} bytes", nameof(secret));
        byte[] seed = RandomNumberGenerator.GetBytes(32);
        try
        {
            byte[] encryptedSecret = OaepEncrypt(ekPublic, seed, "IDENTITY");
            byte[] symKey = KdfA(seed, "STORAGE", akName, [], 128);
            byte[] plain = new byte[2 + secret.Length];
            BinaryPrimitives.WriteUInt16BigEndian(plain, (ushort)secret.Length);
            secret.CopyTo(plain.AsSpan(2));
            byte[] encIdentity = AesCfb(symKey, plain);
            byte[] hmacKey = KdfA(seed, "INTEGRITY", [], [], 256);
            byte[] covered = [.. encIdentity, .. akName];
            byte[] integrity = HMACSHA256.HashData(hmacKey, covered);
            byte[] blob = new byte[2 + integrity.Length + encIdentity.Length];
            BinaryPrimitives.WriteUInt16BigEndian(blob, (ushort)integrity.Length);
            integrity.CopyTo(blob, 2);
            encIdentity.CopyTo(blob, 2 + integrity.Length);
            CryptographicOperations.ZeroMemory(symKey);
            CryptographicOperations.ZeroMemory(hmacKey);
            return (blob, encryptedSecret);
        }
        finally { CryptographicOperations.ZeroMemory(seed); }
    }

    /// <summary>KDFa with HMAC-SHA256 (part 1, 11.4.10.2): counter ‖ label ‖ 0 ‖ contextU ‖ contextV ‖ bits, big-endian.</summary>
    internal static byte[] KdfA(ReadOnlySpan<byte> key, string label, ReadOnlySpan<byte> contextU, ReadOnlySpan<byte> contextV, int bits)
    {
        int bytes = (bits + 7) / 8;
        var output = new byte[bytes];
        byte[] labelBytes = [.. Encoding.ASCII.GetBytes(label), 0];
        byte[] counterBytes = new byte[4], bitsBytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bitsBytes, (uint)bits);
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key);
        for (uint counter = 1, done = 0; done < bytes; counter++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(counterBytes, counter);
            hmac.AppendData(counterBytes);
            hmac.AppendData(labelBytes);
            hmac.AppendData(contextU);
            hmac.AppendData(contextV);
            hmac.AppendData(bitsBytes);
            byte[] block = hmac.GetHashAndReset();
            int take = (int)Math.Min(block.Length, bytes - done);
            block.AsSpan(0, take).CopyTo(output.AsSpan((int)done));
            done += (uint)take;
        }
        return output;
    }

    /// <summary>AES-CFB-128 with a zero IV, any length (a stream mode: the last block's extra key stream is dropped).</summary>
    internal static byte[] AesCfb(byte[] key, ReadOnlySpan<byte> plain)
    {
        using var aes = Aes.Create();
        aes.Key = key;
        int padded = (plain.Length + 15) / 16 * 16;
        byte[] buffer = new byte[padded];
        plain.CopyTo(buffer);
        byte[] cipher = aes.EncryptCfb(buffer, new byte[16], PaddingMode.None, 128);
        return cipher.AsSpan(0, plain.Length).ToArray();
    }

    /// <summary>
    /// RSA-OAEP with SHA-256 and a label (the TPM's: the label's ASCII with its terminating zero), which .NET's
    /// <see cref="RSAEncryptionPadding"/> cannot express: EME-OAEP encoding (RFC 8017, 7.1.1) and the raw RSA operation.
    /// </summary>
    internal static byte[] OaepEncrypt(RSA publicKey, ReadOnlySpan<byte> message, string label)
    {
        var parameters = publicKey.ExportParameters(false);
        int k = parameters.Modulus!.Length, h = SHA256.HashSizeInBytes;
        if (message.Length > k - 2 * h - 2) throw new ArgumentException("message too long for OAEP", nameof(message));
        byte[] lHash = SHA256.HashData([.. Encoding.ASCII.GetBytes(label), 0]);
        byte[] db = new byte[k - h - 1];
        lHash.CopyTo(db, 0);
        db[k - message.Length - h - 2] = 0x01;
        message.CopyTo(db.AsSpan(k - message.Length - h - 1));
        byte[] seed = RandomNumberGenerator.GetBytes(h);
        byte[] dbMask = Mgf1(seed, db.Length);
        for (int i = 0; i < db.Length; i++) db[i] ^= dbMask[i];
        byte[] seedMask = Mgf1(db, h);
        for (int i = 0; i < h; i++) seed[i] ^= seedMask[i];
        byte[] em = [0, .. seed, .. db];
        var m = new BigInteger(em, isUnsigned: true, isBigEndian: true);
        var n = new BigInteger(parameters.Modulus, isUnsigned: true, isBigEndian: true);
        var e = new BigInteger(parameters.Exponent!, isUnsigned: true, isBigEndian: true);
        byte[] c = BigInteger.ModPow(m, e, n).ToByteArray(isUnsigned: true, isBigEndian: true);
        byte[] result = new byte[k];
        c.CopyTo(result, k - c.Length);
        return result;
    }

    static byte[] Mgf1(ReadOnlySpan<byte> seed, int length)
    {
        var output = new byte[length];
        byte[] counter = new byte[4];
        for (int done = 0, i = 0; done < length; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(counter, (uint)i);
            byte[] block = SHA256.HashData([.. seed, .. counter]);
            int take = Math.Min(block.Length, length - done);
            block.AsSpan(0, take).CopyTo(output.AsSpan(done));
            done += take;
        }
        return output;
    }
}

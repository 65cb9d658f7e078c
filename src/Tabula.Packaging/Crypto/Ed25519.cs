using System.Security.Cryptography;
using Rfc8032 = Org.BouncyCastle.Math.EC.Rfc8032.Ed25519;

namespace Tabula.Packaging.Crypto;

/// <summary>
/// PureEdDSA (RFC 8032) over byte strings. The BCL has no Ed25519, so the arithmetic comes from
/// BouncyCastle's static, allocation-light RFC 8032 implementation (trim- and AOT-safe).
/// </summary>
public static class Ed25519
{
    /// <summary>Raw public key length.</summary>
    public const int PublicKeySize = 32;
    /// <summary>Private key (seed) length.</summary>
    public const int PrivateKeySize = 32;
    /// <summary>Signature length.</summary>
    public const int SignatureSize = 64;

    /// <summary>True iff <paramref name="signature"/> is a valid signature of <paramref name="message"/> by <paramref name="publicKey"/>.</summary>
    public static bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        if (publicKey.Length != PublicKeySize || signature.Length != SignatureSize)
            return false;
        // BouncyCastle's verifier takes arrays; these copies are 96 bytes plus the (short) message.
        return Rfc8032.Verify(signature.ToArray(), 0, publicKey.ToArray(), 0, message.ToArray(), 0, message.Length);
    }

    /// <summary>Signs <paramref name="message"/> with the 32-byte seed <paramref name="privateKey"/>.</summary>
    public static byte[] Sign(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> message)
    {
        if (privateKey.Length != PrivateKeySize)
            throw new ArgumentException("an Ed25519 private key is 32 bytes", nameof(privateKey));
        byte[] seed = privateKey.ToArray();
        try
        {
            var signature = new byte[SignatureSize];
            Rfc8032.Sign(seed, 0, message.ToArray(), 0, message.Length, signature, 0);
            return signature;
        }
        finally { CryptographicOperations.ZeroMemory(seed); }
    }

    /// <summary>The public key of a 32-byte seed.</summary>
    public static byte[] PublicKeyOf(ReadOnlySpan<byte> privateKey)
    {
        if (privateKey.Length != PrivateKeySize)
            throw new ArgumentException("an Ed25519 private key is 32 bytes", nameof(privateKey));
        byte[] seed = privateKey.ToArray();
        try
        {
            var publicKey = new byte[PublicKeySize];
            Rfc8032.GeneratePublicKey(seed, 0, publicKey, 0);
            return publicKey;
        }
        finally { CryptographicOperations.ZeroMemory(seed); }
    }

    /// <summary>A fresh 32-byte seed from the OS CSPRNG.</summary>
    public static byte[] NewPrivateKey() => RandomNumberGenerator.GetBytes(PrivateKeySize);
}

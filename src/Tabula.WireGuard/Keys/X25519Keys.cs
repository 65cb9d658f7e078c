using System.Security.Cryptography;
using Org.BouncyCastle.Math.EC.Rfc7748;

namespace Tabula.WireGuard.Keys;

/// <summary>X25519 (RFC 7748) as WireGuard uses it: clamped private keys, public key = X25519(k, 9).</summary>
internal static class X25519Keys
{
    /// <summary>
    /// Clamps a private key in place the way wireguard-tools <c>curve25519_clamp_secret</c> and wireguard-go
    /// <c>NoisePrivateKey.clamp</c> do: clear the 3 low bits, clear bit 255, set bit 254.
    /// </summary>
    public static void Clamp(Span<byte> privateKey)
    {
        privateKey[0] &= 248;
        privateKey[31] = (byte)((privateKey[31] & 127) | 64);
    }

    /// <summary>Writes X25519(clamp(private), 9) into <paramref name="publicKey"/>; the private key is not modified.</summary>
    public static void DerivePublicKey(ReadOnlySpan<byte> privateKey, Span<byte> publicKey)
    {
        Span<byte> clamped = stackalloc byte[X25519.ScalarSize];
        try
        {
            privateKey.CopyTo(clamped);
            Clamp(clamped);
            // BouncyCastle clamps again internally (RFC 7748 decodeScalar25519); clamping is idempotent.
            X25519.ScalarMultBase(clamped, publicKey);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(clamped);
        }
    }

    /// <summary>X25519(private, public) into <paramref name="shared"/>; false when the result is all zero (a low-order point).</summary>
    public static bool SharedSecret(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey, Span<byte> shared)
    {
        Span<byte> clamped = stackalloc byte[X25519.ScalarSize];
        try
        {
            privateKey.CopyTo(clamped);
            Clamp(clamped);
            return X25519.CalculateAgreement(clamped, publicKey, shared);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(clamped);
        }
    }
}

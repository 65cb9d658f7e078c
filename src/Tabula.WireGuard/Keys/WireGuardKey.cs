using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Tabula.WireGuard.Keys;

/// <summary>
/// A 32-byte WireGuard key: a Curve25519 private or public key, or a preshared key (wireguard-go
/// <c>NoisePrivateKey</c>/<c>NoisePublicKey</c>/<c>NoisePresharedKey</c> in one type, as the wire formats do not
/// tell them apart).
/// </summary>
/// <remarks>
/// <para>The bytes live in a pinned array so the garbage collector never leaves a stray copy behind when it
/// compacts; <see cref="Dispose"/> zeroes them with <see cref="CryptographicOperations.ZeroMemory"/>. Dispose every
/// private and preshared key when done; disposing a public key is harmless. A disposed key throws
/// <see cref="ObjectDisposedException"/> on use.</para>
/// <para>Equality is constant-time (<see cref="CryptographicOperations.FixedTimeEquals"/>). Parsing from base64 and
/// hex is constant-time too (ported from wireguard-tools <c>encoding.c</c>), so reading a private key from a file
/// does not leak it through timing. <see cref="ToString"/> never prints key material: call
/// <see cref="ToBase64"/> or <see cref="ToHex"/> on purpose.</para>
/// </remarks>
public sealed class WireGuardKey : IEquatable<WireGuardKey>, IDisposable
{
    /// <summary>Key length in bytes.</summary>
    public const int Length = Limits.KeyLength;

    /// <summary>Length of the base64 form: 44 characters, the last one '='.</summary>
    public const int Base64Length = 44;

    /// <summary>Length of the hex form used by the UAPI protocol: 64 characters.</summary>
    public const int HexLength = 64;

    readonly byte[] bytes = GC.AllocateArray<byte>(Length, pinned: true);
    bool disposed;

    WireGuardKey() { }

    /// <summary>Copies <paramref name="key"/>, which must be exactly 32 bytes. The caller still owns (and should clear) its copy.</summary>
    public WireGuardKey(ReadOnlySpan<byte> key)
    {
        if (key.Length != Length)
            throw new ArgumentException($"a WireGuard key is {Length} bytes, not {key.Length}", nameof(key));
        key.CopyTo(bytes);
    }

    /// <summary>The raw bytes. Valid until <see cref="Dispose"/>; do not keep the span beyond the key's lifetime.</summary>
    public ReadOnlySpan<byte> Bytes
    {
        get
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            return bytes;
        }
    }

    /// <summary>True for the all-zero key, which the protocols use to mean "remove" (private and preshared keys).</summary>
    public bool IsZero
    {
        get
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            return !Bytes.ContainsAnyExcept((byte)0);
        }
    }

    /// <summary>The all-zero key: as a private key or preshared key in an update it removes the current one.</summary>
    public static WireGuardKey Zero() => new();

    /// <summary>A new private key from the OS random generator, clamped as <c>wg genkey</c> does.</summary>
    public static WireGuardKey GeneratePrivateKey()
    {
        var key = new WireGuardKey();
        RandomNumberGenerator.Fill(key.bytes);
        X25519Keys.Clamp(key.bytes);
        return key;
    }

    /// <summary>A new preshared key: 32 random bytes, as <c>wg genpsk</c> makes.</summary>
    public static WireGuardKey GeneratePresharedKey()
    {
        var key = new WireGuardKey();
        RandomNumberGenerator.Fill(key.bytes);
        return key;
    }

    /// <summary>Treats this key as a private key and derives its public key, X25519(clamp(this), 9), as <c>wg pubkey</c> does.</summary>
    public WireGuardKey DerivePublicKey()
    {
        var publicKey = new WireGuardKey();
        X25519Keys.DerivePublicKey(Bytes, publicKey.bytes);
        return publicKey;
    }

    /// <summary>Parses the 44-character base64 form (<c>wg genkey</c>, config files). Throws <see cref="WireGuardKeyFormatException"/>.</summary>
    public static WireGuardKey ParseBase64(ReadOnlySpan<char> text)
    {
        var key = new WireGuardKey();
        if (KeyEncoding.TryDecodeBase64(text, key.bytes) is { } error)
        {
            key.Dispose();
            WireGuardKeyFormatException.Throw(error);
        }
        return key;
    }

    /// <summary>Parses the 64-character hex form (UAPI). Upper- and lower-case digits are accepted. Throws <see cref="WireGuardKeyFormatException"/>.</summary>
    public static WireGuardKey ParseHex(ReadOnlySpan<char> text)
    {
        var key = new WireGuardKey();
        if (KeyEncoding.TryDecodeHex(text, key.bytes) is { } error)
        {
            key.Dispose();
            WireGuardKeyFormatException.Throw(error);
        }
        return key;
    }

    /// <summary>Like <see cref="ParseBase64"/> but returns false instead of throwing.</summary>
    public static bool TryParseBase64(ReadOnlySpan<char> text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out WireGuardKey? key)
    {
        key = new WireGuardKey();
        if (KeyEncoding.TryDecodeBase64(text, key.bytes) is null)
            return true;
        key.Dispose();
        key = null;
        return false;
    }

    /// <summary>Like <see cref="ParseHex"/> but returns false instead of throwing.</summary>
    public static bool TryParseHex(ReadOnlySpan<char> text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out WireGuardKey? key)
    {
        key = new WireGuardKey();
        if (KeyEncoding.TryDecodeHex(text, key.bytes) is null)
            return true;
        key.Dispose();
        key = null;
        return false;
    }

    /// <summary>The 44-character base64 form.</summary>
    public string ToBase64() => Convert.ToBase64String(Bytes);

    /// <summary>The 64-character lower-case hex form (UAPI).</summary>
    public string ToHex() => Convert.ToHexStringLower(Bytes);

    /// <summary>Writes the lower-case hex form as ASCII into <paramref name="destination"/> (at least 64 bytes).</summary>
    public void FormatHex(Span<byte> destination) => KeyEncoding.EncodeHex(Bytes, destination);

    /// <summary>A copy that the caller owns and must dispose separately.</summary>
    public WireGuardKey Clone() => new(Bytes);

    /// <summary>Constant-time comparison of the 32 bytes.</summary>
    public bool Equals(WireGuardKey? other) =>
        other is not null && CryptographicOperations.FixedTimeEquals(Bytes, other.Bytes);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is WireGuardKey other && Equals(other);

    /// <summary>
    /// The first four bytes. Fine for public keys (peer dictionaries); a private key's hash code reveals 32 bits of it,
    /// so do not put private keys in hash tables.
    /// </summary>
    public override int GetHashCode() => BinaryPrimitives.ReadInt32LittleEndian(Bytes);

    /// <summary>Never the key: "WireGuardKey" (or "WireGuardKey (disposed)").</summary>
    public override string ToString() => disposed ? "WireGuardKey (disposed)" : "WireGuardKey";

    /// <summary>Zeroes the bytes. Idempotent.</summary>
    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(bytes);
        disposed = true;
    }
}

using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace Tabula.Fleet.Protocol;

/// <summary>
/// A Curve25519 public key as it travels on the relay wire: 32 bytes, written as standard base64 with padding
/// (44 characters, the last one '='), as <c>wg pubkey</c> prints it. The one public-key type of the fleet and the
/// relay wire; Tabula.WireGuard's <c>WireGuardKey</c> (private keys, zeroing, kernel and UAPI encodings) is made from
/// <see cref="Bytes"/> at the edge where a key goes into a device (docs/architecture.md says why).
/// </summary>
/// <remarks>
/// Immutable. Equality is constant-time, although a public key is no secret, so a key compare never becomes the one
/// that leaks. <see cref="ToString"/> never prints the key (customer keys must not reach a log by accident): call
/// <see cref="ToBase64"/> on purpose.
/// </remarks>
public sealed class WireGuardPublicKey : IEquatable<WireGuardPublicKey>
{
    /// <summary>Key length in bytes.</summary>
    public const int Size = 32;

    /// <summary>Length of the base64 form.</summary>
    public const int Base64Length = 44;

    readonly byte[] bytes;

    WireGuardPublicKey(byte[] bytes) => this.bytes = bytes;

    /// <summary>The 32 bytes.</summary>
    public ReadOnlySpan<byte> Bytes => bytes;

    /// <summary>A copy of <paramref name="key"/>, which must be 32 bytes (<see cref="ArgumentException"/> otherwise).</summary>
    public static WireGuardPublicKey FromBytes(ReadOnlySpan<byte> key) =>
        key.Length == Size ? new WireGuardPublicKey(key.ToArray())
            : throw new ArgumentException($"a WireGuard public key is {Size} bytes, not {key.Length}", nameof(key));

    /// <summary>Takes ownership of <paramref name="key"/> (32 bytes, not copied): for parsers that just decoded it.</summary>
    internal static WireGuardPublicKey Own(byte[] key) => new(key);

    /// <summary>
    /// Parses the canonical base64 form: 44 characters, decoding to 32 bytes, the last character hiding no extra bits
    /// (otherwise one key would have several spellings), and not the all-zero key (which WireGuard uses to mean
    /// "none"). Returns false for anything else, including null.
    /// </summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out WireGuardPublicKey? key)
    {
        key = null;
        if (text is null || text.Length != Base64Length || text[^1] != '=') return false;
        Span<byte> buffer = stackalloc byte[Size + 1];
        if (!Convert.TryFromBase64String(text, buffer, out int written) || written != Size) return false;
        var decoded = buffer[..Size];
        if (!decoded.ContainsAnyExcept((byte)0)) return false;
        Span<char> canonical = stackalloc char[Base64Length];
        if (!Convert.TryToBase64Chars(decoded, canonical, out _) || !canonical.SequenceEqual(text)) return false;
        key = new WireGuardPublicKey(decoded.ToArray());
        return true;
    }

    /// <summary>The 44-character base64 form.</summary>
    public string ToBase64() => Convert.ToBase64String(bytes);

    /// <summary>A copy of the 32 bytes (for storage).</summary>
    public byte[] ToArray() => (byte[])bytes.Clone();

    /// <summary>Constant-time comparison of the 32 bytes.</summary>
    public bool Equals(WireGuardPublicKey? other) => other is not null && CryptographicOperations.FixedTimeEquals(bytes, other.bytes);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is WireGuardPublicKey other && Equals(other);

    /// <summary>The first four bytes: public keys are uniformly distributed.</summary>
    public override int GetHashCode() => BinaryPrimitives.ReadInt32LittleEndian(bytes);

    /// <summary>Never the key.</summary>
    public override string ToString() => nameof(WireGuardPublicKey);
}

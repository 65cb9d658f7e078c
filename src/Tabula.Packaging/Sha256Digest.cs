using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace Tabula.Packaging;

/// <summary>
/// A SHA-256 digest: what an OS package archive is known by (signatures cover it, stboot hands it over, the
/// provisioning store names objects by it). Parsed only from exactly 64 lowercase hex digits, so a digest is always
/// safe to use as a file name and a URL segment. <c>default</c> is not a digest; every factory returns a real one.
/// </summary>
public readonly record struct Sha256Digest
{
    /// <summary>Bytes in a digest.</summary>
    public const int Size = SHA256.HashSizeInBytes;

    readonly byte[] bytes;

    Sha256Digest(byte[] bytes) => this.bytes = bytes;

    /// <summary>The 32 bytes.</summary>
    public ReadOnlySpan<byte> Bytes => bytes;

    /// <summary>64 lowercase hex digits, as every format here writes a digest.</summary>
    public string Hex => Convert.ToHexStringLower(bytes);

    /// <summary>A digest computed elsewhere (an <see cref="IncrementalHash"/>, say); throws unless it is 32 bytes.</summary>
    public static Sha256Digest FromBytes(ReadOnlySpan<byte> digest) =>
        digest.Length == Size
            ? new Sha256Digest(digest.ToArray())
            : throw new ArgumentException("a SHA-256 digest is 32 bytes", nameof(digest));

    /// <summary>The digest of <paramref name="data"/>.</summary>
    public static Sha256Digest Of(ReadOnlySpan<byte> data) => new(SHA256.HashData(data));

    /// <summary>Parses 64 lowercase hex digits (uppercase is refused: one digest, one spelling).</summary>
    public static bool TryParse([NotNullWhen(true)] string? hex, out Sha256Digest digest)
    {
        digest = default;
        if (hex is not { Length: Size * 2 })
            return false;
        foreach (char c in hex)
            if (!char.IsAsciiDigit(c) && c is not (>= 'a' and <= 'f'))
                return false;
        digest = new Sha256Digest(Convert.FromHexString(hex));
        return true;
    }

    /// <summary>Parses like <see cref="TryParse"/>, or throws <see cref="FormatError.InvalidField"/> naming <paramref name="what"/>.</summary>
    public static Sha256Digest Parse(string hex, string what) =>
        TryParse(hex, out var digest) ? digest
            : PackageFormatException.Throw<Sha256Digest>(FormatError.InvalidField, $"{what} must be 64 lowercase hex digits");

    /// <summary>Byte-wise equality (digests are public values: no constant-time compare needed).</summary>
    public bool Equals(Sha256Digest other) => bytes.AsSpan().SequenceEqual(other.bytes);

    /// <inheritdoc/>
    public override int GetHashCode() => bytes is null ? 0 : BitConverter.ToInt32(bytes, 0);

    /// <summary><c>sha256:HEX</c>.</summary>
    public override string ToString() => "sha256:" + Hex;
}

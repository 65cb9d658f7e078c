using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace Tabula.Provisioning.Core;

/// <summary>A SHA-256 digest: the name of every stored object. Parsed only from exactly 64 lowercase hex digits,
/// so a digest is always safe to use as a file name and a URL segment.</summary>
public readonly record struct Sha256Digest
{
    readonly byte[] bytes;

    Sha256Digest(byte[] bytes) => this.bytes = bytes;

    public ReadOnlySpan<byte> Bytes => bytes;

    public string Hex => Convert.ToHexStringLower(bytes);

    public static Sha256Digest FromBytes(ReadOnlySpan<byte> digest) =>
        digest.Length == SHA256.HashSizeInBytes
            ? new Sha256Digest(digest.ToArray())
            : throw new ArgumentException("a SHA-256 digest is 32 bytes", nameof(digest));

    public static Sha256Digest Of(ReadOnlySpan<byte> data) => new(SHA256.HashData(data));

    public static bool TryParse([NotNullWhen(true)] string? hex, out Sha256Digest digest)
    {
        digest = default;
        if (hex is not { Length: 64 })
            return false;
        foreach (char c in hex)
            if (!char.IsAsciiDigit(c) && c is not (>= 'a' and <= 'f'))
                return false;
        digest = new Sha256Digest(Convert.FromHexString(hex));
        return true;
    }

    public bool Equals(Sha256Digest other) => bytes.AsSpan().SequenceEqual(other.bytes);

    public override int GetHashCode() => bytes is null ? 0 : BitConverter.ToInt32(bytes, 0);

    public override string ToString() => "sha256:" + Hex;
}

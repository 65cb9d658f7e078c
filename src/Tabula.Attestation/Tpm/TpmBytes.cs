using System.Buffers.Binary;

namespace Tabula.Attestation.Tpm;

/// <summary>Why TPM bytes from a relay were refused (truncated, oversized, or a value this verifier does not accept).</summary>
public sealed class TpmFormatException : Exception
{
    internal TpmFormatException(string message) : base(message) { }
}

/// <summary>
/// A big-endian reader over TPM wire bytes (TPM 2.0 part 1, 18: every integer is big-endian, a TPM2B is a 16-bit size and
/// that many bytes). Every read is bounds-checked; running off the end is a <see cref="TpmFormatException"/>.
/// </summary>
internal ref struct TpmBytes(ReadOnlySpan<byte> bytes, string what)
{
    readonly ReadOnlySpan<byte> bytes = bytes;
    int at;

    public readonly int Offset => at;
    public readonly bool AtEnd => at == bytes.Length;

    public ReadOnlySpan<byte> Take(int count, string field)
    {
        if (count < 0 || count > bytes.Length - at)
            throw new TpmFormatException($"{what}: truncated at {field} (offset {at}, {count} bytes wanted, {bytes.Length - at} left)");
        var slice = bytes.Slice(at, count);
        at += count;
        return slice;
    }

    public byte U8(string field) => Take(1, field)[0];
    public ushort U16(string field) => BinaryPrimitives.ReadUInt16BigEndian(Take(2, field));
    public uint U32(string field) => BinaryPrimitives.ReadUInt32BigEndian(Take(4, field));
    public ulong U64(string field) => BinaryPrimitives.ReadUInt64BigEndian(Take(8, field));

    /// <summary>A TPM2B: a 16-bit size, then at most <paramref name="max"/> bytes.</summary>
    public ReadOnlySpan<byte> Sized(string field, int max)
    {
        ushort size = U16(field);
        if (size > max) throw new TpmFormatException($"{what}: {field} is {size} bytes, at most {max} allowed");
        return Take(size, field);
    }

    public readonly void End()
    {
        if (!AtEnd) throw new TpmFormatException($"{what}: {bytes.Length - at} bytes after the end");
    }
}

/// <summary>TPM 2.0 constants this verifier reads (part 2).</summary>
internal static class TpmAlg
{
    public const ushort Rsa = 0x0001, Sha1 = 0x0004, Hmac = 0x0005, Aes = 0x0006, KeyedHash = 0x0008, Sha256 = 0x000B, Sha384 = 0x000C,
        Null = 0x0010, RsaSsa = 0x0014, RsaPss = 0x0016, Ecdsa = 0x0018, Ecdaa = 0x001A, Ecc = 0x0023, Cfb = 0x0043;
    public const ushort EccNistP256 = 0x0003, EccNistP384 = 0x0004;
    public const uint GeneratedMagic = 0xFF544347;
    public const ushort AttestQuote = 0x8018;
}

/// <summary>Bounds on what a relay may send (arbitrary but generous; the TPM's own are smaller).</summary>
public static class TpmVerifierLimits
{
    /// <summary>Largest digest or name field (a name is 2 + 64 bytes with SHA-512).</summary>
    public const int MaxDigest = 66;
    /// <summary>Largest RSA modulus or signature (RSA-4096).</summary>
    public const int MaxRsaBytes = 512;
    /// <summary>Largest ECC coordinate (P-521).</summary>
    public const int MaxEccCoordinate = 66;
    /// <summary>Largest qualifying data, auth policy, or credential field.</summary>
    public const int MaxData = 256;
    /// <summary>Largest TPMT_PUBLIC, TPMS_ATTEST or TPMT_SIGNATURE accepted.</summary>
    public const int MaxStructure = 2048;
}

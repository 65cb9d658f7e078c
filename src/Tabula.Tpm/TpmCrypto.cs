using System.Security.Cryptography;

namespace Tabula.Tpm;

/// <summary>The hashes and small helpers the TPM formats need, on System.Security.Cryptography.</summary>
internal static class TpmCrypto
{
    public static HashAlgorithmName HashName(TpmAlgorithm algorithm) => algorithm switch
    {
        TpmAlgorithm.Sha1 => HashAlgorithmName.SHA1,
        TpmAlgorithm.Sha256 => HashAlgorithmName.SHA256,
        TpmAlgorithm.Sha384 => HashAlgorithmName.SHA384,
        TpmAlgorithm.Sha512 => HashAlgorithmName.SHA512,
        _ => throw new TpmFormatException(TpmFormatError.UnsupportedAlgorithm, $"hash algorithm 0x{(ushort)algorithm:x4}"),
    };

    public static byte[] Hash(TpmAlgorithm algorithm, ReadOnlySpan<byte> data) => algorithm switch
    {
        TpmAlgorithm.Sha1 => SHA1.HashData(data),
        TpmAlgorithm.Sha256 => SHA256.HashData(data),
        TpmAlgorithm.Sha384 => SHA384.HashData(data),
        TpmAlgorithm.Sha512 => SHA512.HashData(data),
        _ => throw new TpmFormatException(TpmFormatError.UnsupportedAlgorithm, $"hash algorithm 0x{(ushort)algorithm:x4}"),
    };

    public static byte[] Hmac(TpmAlgorithm algorithm, ReadOnlySpan<byte> key, ReadOnlySpan<byte> data) => algorithm switch
    {
        TpmAlgorithm.Sha1 => HMACSHA1.HashData(key, data),
        TpmAlgorithm.Sha256 => HMACSHA256.HashData(key, data),
        TpmAlgorithm.Sha384 => HMACSHA384.HashData(key, data),
        TpmAlgorithm.Sha512 => HMACSHA512.HashData(key, data),
        _ => throw new TpmFormatException(TpmFormatError.UnsupportedAlgorithm, $"hash algorithm 0x{(ushort)algorithm:x4}"),
    };

    public static int CoordinateSize(TpmEccCurve curve) => curve switch
    {
        TpmEccCurve.NistP256 => 32,
        TpmEccCurve.NistP384 => 48,
        TpmEccCurve.NistP521 => 66,
        _ => throw new TpmFormatException(TpmFormatError.UnsupportedAlgorithm, "TPMS_ECC_PARMS.curveID"),
    };

    public static byte[] LeftPad(byte[] value, int size)
    {
        if (value.Length == size)
            return value;
        var padded = new byte[size];
        value.CopyTo(padded, size - value.Length);
        return padded;
    }
}

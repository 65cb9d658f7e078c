using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Tabula.Fleet.Security;

/// <summary>
/// TOTP (RFC 6238) over HOTP (RFC 4226): 30-second steps from the Unix epoch, dynamic truncation.
/// Authenticator apps use HMAC-SHA1 with 6 digits, which is what staff accounts get.
/// </summary>
public static class Totp
{
    public const int StepSeconds = 30;

    public static long StepAt(DateTimeOffset time) => time.ToUnixTimeSeconds() / StepSeconds;

    public static string Code(ReadOnlySpan<byte> secret, long step, int digits = 6, HashAlgorithmName? algorithm = null)
    {
        Span<byte> counter = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(counter, step);
        Span<byte> mac = stackalloc byte[64];
        var alg = algorithm ?? HashAlgorithmName.SHA1;
        int length = alg == HashAlgorithmName.SHA1 ? HMACSHA1.HashData(secret, counter, mac)
            : alg == HashAlgorithmName.SHA256 ? HMACSHA256.HashData(secret, counter, mac)
            : alg == HashAlgorithmName.SHA512 ? HMACSHA512.HashData(secret, counter, mac)
            : throw new ArgumentException("TOTP uses SHA-1, SHA-256 or SHA-512", nameof(algorithm));
        int offset = mac[length - 1] & 0x0f;
        int binary = (BinaryPrimitives.ReadInt32BigEndian(mac[offset..]) & 0x7fffffff);
        long modulus = 1;
        for (int i = 0; i < digits; i++) modulus *= 10;
        return (binary % modulus).ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(digits, '0');
    }

    /// <summary>
    /// The step whose code matches, allowing one step of clock skew either way, or null.
    /// The caller refuses steps at or before the last one used, so a code works once.
    /// </summary>
    public static long? Match(ReadOnlySpan<byte> secret, string code, DateTimeOffset now)
    {
        if (code.Length != 6) return null;
        long current = StepAt(now);
        for (long step = current - 1; step <= current + 1; step++)
            if (CryptographicOperations.FixedTimeEquals(
                    System.Text.Encoding.ASCII.GetBytes(Code(secret, step)), System.Text.Encoding.ASCII.GetBytes(code)))
                return step;
        return null;
    }

    public static string Uri(string issuer, string account, ReadOnlySpan<byte> secret) =>
        $"otpauth://totp/{System.Uri.EscapeDataString(issuer)}:{System.Uri.EscapeDataString(account)}" +
        $"?secret={Base32.Encode(secret)}&issuer={System.Uri.EscapeDataString(issuer)}&algorithm=SHA1&digits=6&period=30";
}

/// <summary>RFC 4648 base32 without padding, as authenticator apps expect.</summary>
public static class Base32
{
    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    public static string Encode(ReadOnlySpan<byte> data)
    {
        var sb = new System.Text.StringBuilder((data.Length * 8 + 4) / 5);
        int buffer = 0, bits = 0;
        foreach (byte b in data)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5) { sb.Append(Alphabet[(buffer >> (bits - 5)) & 31]); bits -= 5; }
        }
        if (bits > 0) sb.Append(Alphabet[(buffer << (5 - bits)) & 31]);
        return sb.ToString();
    }

    public static byte[] Decode(string text)
    {
        var output = new List<byte>(text.Length * 5 / 8);
        int buffer = 0, bits = 0;
        foreach (char c in text.TrimEnd('='))
        {
            int v = Alphabet.IndexOf(char.ToUpperInvariant(c));
            if (v < 0) throw new FormatException("not base32");
            buffer = (buffer << 5) | v;
            bits += 5;
            if (bits >= 8) { output.Add((byte)(buffer >> (bits - 8))); bits -= 8; }
        }
        return [.. output];
    }
}

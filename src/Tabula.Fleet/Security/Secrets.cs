using System.Security.Cryptography;

namespace Tabula.Fleet.Security;

/// <summary>
/// Bearer secrets (staff sessions, API tokens, relay tokens, enrollment tokens). Only their SHA-256 is
/// stored: the secrets are 256-bit random, so a fast hash suffices and a stolen database yields no usable token.
/// </summary>
public static class Secrets
{
    public static string NewToken(string prefix) =>
        prefix + "_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static byte[] HashToken(string token) => SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(token));

    /// <summary>A 16-digit account number from the CSPRNG (~53 bits), like Mullvad's: no name, no email.</summary>
    public static string NewAccountNumber()
    {
        Span<char> digits = stackalloc char[16];
        for (int i = 0; i < digits.Length; i++) digits[i] = (char)('0' + RandomNumberGenerator.GetInt32(10));
        if (digits[0] == '0') digits[0] = '1';
        return new string(digits);
    }
}

using System.Security.Cryptography;

namespace Tabula.Fleet.Core;

/// <summary>A Curve25519 public key as WireGuard writes it: 32 bytes, standard base64 with padding (44 characters).</summary>
public static class WireGuardKey
{
    public const int Size = 32;

    public static bool TryParse(string? text, out byte[] key)
    {
        key = [];
        if (text is null || text.Length != 44 || text[43] != '=') return false;
        var buffer = new byte[33];
        if (!Convert.TryFromBase64String(text, buffer, out int written) || written != Size) return false;
        key = buffer[..Size];
        // Canonical form only: the 44th character must not hide extra bits (otherwise two spellings, one key).
        return Convert.ToBase64String(key) == text && !key.AsSpan().SequenceEqual(new byte[Size]);
    }

    public static byte[] Parse(string? text, string field) =>
        TryParse(text, out var key) ? key
            : throw new FleetException(FleetError.InvalidInput, $"{field} must be a WireGuard public key: 32 bytes in base64 (44 characters)");

    public static string Format(ReadOnlySpan<byte> key) => Convert.ToBase64String(key);

    public static bool Equal(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) => CryptographicOperations.FixedTimeEquals(a, b);
}

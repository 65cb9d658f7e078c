namespace Tabula.Packaging;

/// <summary>Lowercase hex, as every format here writes it (Sigsum, digests).</summary>
public static class Hex
{
    /// <summary>Lowercase hex of <paramref name="bytes"/>.</summary>
    public static string Encode(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(bytes);

    /// <summary>Decodes hex of exactly <paramref name="length"/> bytes, or throws naming <paramref name="what"/>.</summary>
    public static byte[] Decode(string text, int length, string what, FormatError error = FormatError.InvalidField)
    {
        if (text.Length != length * 2)
            PackageFormatException.Throw(error, $"{what} must be {length * 2} hex digits, got {Math.Min(text.Length, 9999)} characters");
        try { return Convert.FromHexString(text); }
        catch (FormatException e) { return PackageFormatException.Throw<byte[]>(error, $"{what} is not valid hex", e); }
    }
}

using System.Security.Cryptography;
using System.Text;

namespace Tabula.Packaging;

/// <summary>One PEM block: its label ("CERTIFICATE", "PRIVATE KEY", …) and the decoded DER bytes.</summary>
public sealed record PemBlock(string Label, byte[] Der);

/// <summary>
/// PEM text (RFC 7468) read with limits. Blocks of other types are returned too; callers filter by
/// label, as Go's pem.Decode loop in stboot does. Text between blocks is ignored.
/// </summary>
public static class Pem
{
    /// <summary>Every PEM block in <paramref name="utf8"/>, in order. Throws on bad base64 or over-limit input.</summary>
    public static IReadOnlyList<PemBlock> ReadAll(ReadOnlySpan<byte> utf8)
    {
        PackageFormatException.ThrowIfTooLarge(utf8.Length, Limits.MaxPemBytes, "PEM input");
        string text = Encoding.UTF8.GetString(utf8);
        var blocks = new List<PemBlock>();
        ReadOnlySpan<char> rest = text;
        while (PemEncoding.TryFind(rest, out PemFields fields))
        {
            if (blocks.Count == Limits.MaxPemBlocks)
                PackageFormatException.Throw(FormatError.TooLarge, $"PEM input has more than {Limits.MaxPemBlocks} blocks");
            string label = rest[fields.Label].ToString();
            var der = new byte[fields.DecodedDataLength];
            if (!Convert.TryFromBase64Chars(rest[fields.Base64Data], der, out int written))
                PackageFormatException.Throw(FormatError.InvalidPem, $"PEM block {blocks.Count + 1} ({label}) has invalid base64");
            blocks.Add(new PemBlock(label, der[..written]));
            rest = rest[fields.Location.End..];
        }
        // PemEncoding.TryFind skips blocks with malformed base64 silently; catch "looks like PEM but isn't".
        if (blocks.Count == 0 && text.Contains("-----BEGIN ", StringComparison.Ordinal))
            PackageFormatException.Throw(FormatError.InvalidPem, "PEM block is malformed (bad base64 or mismatched BEGIN/END lines)");
        return blocks;
    }

    /// <summary>The DER of the first block labelled <paramref name="label"/>, or throws.</summary>
    public static byte[] ReadSingle(ReadOnlySpan<byte> utf8, string label)
    {
        foreach (var block in ReadAll(utf8))
            if (block.Label == label)
                return block.Der;
        return PackageFormatException.Throw<byte[]>(FormatError.InvalidPem, $"no PEM block of type {label} found");
    }

    /// <summary>PEM text for one DER certificate, with a trailing newline (as Go's pem.Encode writes).</summary>
    public static string EncodeCertificate(ReadOnlySpan<byte> der) => new string(PemEncoding.Write("CERTIFICATE", der)) + "\n";
}

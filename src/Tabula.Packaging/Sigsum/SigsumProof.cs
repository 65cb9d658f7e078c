using System.Globalization;
using System.Text;

namespace Tabula.Packaging;

/// <summary>
/// A Sigsum proof, format v2 (sigsum-go doc/sigsum-proof.md): the submitter's leaf, a log-signed
/// tree head with witness cosignatures, and an inclusion proof. Parsed strictly: three blocks,
/// fixed key order, lowercase hex of fixed lengths.
/// </summary>
public sealed record SigsumProof(
    byte[] LogKeyHash,
    byte[] LeafKeyHash,
    byte[] LeafSignature,
    ulong Size,
    byte[] RootHash,
    byte[] TreeHeadSignature,
    IReadOnlyList<SigsumProof.Cosignature> Cosignatures,
    ulong LeafIndex,
    IReadOnlyList<byte[]> NodeHashes)
{
    /// <summary>One witness cosignature: key hash of the witness, its timestamp, its signature.</summary>
    public sealed record Cosignature(byte[] KeyHash, ulong Timestamp, byte[] Signature);

    /// <summary>True when the text looks like a proof rather than a raw signature.</summary>
    public static bool LooksLikeProof(ReadOnlySpan<byte> bytes) => bytes.StartsWith("version="u8);

    /// <summary>Parses proof text or throws <see cref="PackageFormatException"/> (InvalidSigsum).</summary>
    public static SigsumProof Parse(ReadOnlySpan<byte> utf8)
    {
        PackageFormatException.ThrowIfTooLarge(utf8.Length, Limits.MaxSigsumProofBytes, "Sigsum proof");
        if (!Ascii.IsValid(utf8)) Fail("is not ASCII");
        var lines = Encoding.ASCII.GetString(utf8).Split('\n');
        int i = 0;
        string Next(string key)
        {
            if (i >= lines.Length || !lines[i].StartsWith(key + "=", StringComparison.Ordinal))
                Fail($"expected \"{key}=\" on line {i + 1}");
            return lines[i++][(key.Length + 1)..];
        }
        bool At(string key) => i < lines.Length && lines[i].StartsWith(key + "=", StringComparison.Ordinal);
        void Blank()
        {
            if (i >= lines.Length || lines[i].Length != 0) Fail($"expected an empty line on line {i + 1}");
            i++;
        }

        if (Next("version") != "2") Fail("only version=2 is supported");
        byte[] logKeyHash = HexField(Next("log"), 32, "log");
        string[] leaf = Next("leaf").Split(' ');
        if (leaf.Length != 2) Fail("leaf must be \"<key hash> <signature>\"");
        byte[] leafKeyHash = HexField(leaf[0], 32, "leaf key hash");
        byte[] leafSignature = HexField(leaf[1], 64, "leaf signature");
        Blank();
        ulong size = Number(Next("size"), "size");
        byte[] rootHash = HexField(Next("root_hash"), 32, "root_hash");
        byte[] signature = HexField(Next("signature"), 64, "signature");
        var cosignatures = new List<Cosignature>();
        while (At("cosignature"))
        {
            if (cosignatures.Count == Limits.MaxSigsumCosignatures) Fail($"more than {Limits.MaxSigsumCosignatures} cosignatures");
            string[] parts = Next("cosignature").Split(' ');
            if (parts.Length != 3) Fail("cosignature must be \"<key hash> <time> <signature>\"");
            cosignatures.Add(new Cosignature(HexField(parts[0], 32, "cosignature key hash"), Number(parts[1], "cosignature time"), HexField(parts[2], 64, "cosignature")));
        }
        ulong leafIndex = 0;
        var nodes = new List<byte[]>();
        if (size > 1)
        {
            Blank();
            leafIndex = Number(Next("leaf_index"), "leaf_index");
            while (At("node_hash"))
            {
                if (nodes.Count == Limits.MaxSigsumNodeHashes) Fail($"more than {Limits.MaxSigsumNodeHashes} node hashes");
                nodes.Add(HexField(Next("node_hash"), 32, "node_hash"));
            }
        }
        else if (i < lines.Length && lines[i].Length == 0 && i + 1 < lines.Length && lines[i + 1].StartsWith("leaf_index=", StringComparison.Ordinal))
        {
            // Some writers include an inclusion block for a one-leaf tree; it must then say index 0.
            i++;
            leafIndex = Number(Next("leaf_index"), "leaf_index");
        }
        // Only a final newline may follow.
        while (i < lines.Length)
            if (lines[i++].Length != 0) Fail($"unexpected content on line {i}");
        return new SigsumProof(logKeyHash, leafKeyHash, leafSignature, size, rootHash, signature, cosignatures, leafIndex, nodes);
    }

    private static byte[] HexField(string text, int length, string what)
    {
        if (text.Length != length * 2 || !text.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f')))
            Fail($"{what} must be {length * 2} lowercase hex digits");
        return Convert.FromHexString(text);
    }

    private static ulong Number(string text, string what) =>
        text.Length is > 0 and <= 20 && text.All(char.IsAsciiDigit) && ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n)
            ? n : Fail<ulong>($"{what} must be a decimal number");

    private static void Fail(string why) => Fail<int>(why);
    private static T Fail<T>(string why) => PackageFormatException.Throw<T>(FormatError.InvalidSigsum, $"Sigsum proof: {why}");
}

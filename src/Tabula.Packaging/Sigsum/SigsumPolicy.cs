using System.Security.Cryptography;
using System.Text;

namespace Tabula.Packaging;

/// <summary>
/// A Sigsum trust policy (sigsum-go doc/policy.md): the logs we accept, the witnesses we know,
/// groups of witnesses with thresholds, and which group is the quorum. In an ST trust policy it is
/// the optional file <c>ospkg_trust_policy</c>; its presence means every signature needs a proof.
/// </summary>
public sealed class SigsumPolicy
{
    /// <summary>A quorum node: a witness (by key hash) or a group with a threshold.</summary>
    public abstract record Member(string Name);
    /// <summary>A witness, known by its public key.</summary>
    public sealed record Witness(string Name, byte[] PublicKey, byte[] KeyHash) : Member(Name);
    /// <summary>A group satisfied when at least <paramref name="Threshold"/> members are.</summary>
    public sealed record Group(string Name, int Threshold, IReadOnlyList<Member> Members) : Member(Name);

    /// <summary>Accepted logs: SHA-256 of the public key (hex) to the public key.</summary>
    public IReadOnlyDictionary<string, byte[]> Logs { get; }
    /// <summary>Known witnesses by key hash (hex).</summary>
    public IReadOnlyDictionary<string, Witness> Witnesses { get; }
    /// <summary>The quorum rule; null for <c>quorum none</c>.</summary>
    public Member? Quorum { get; }

    private SigsumPolicy(Dictionary<string, byte[]> logs, Dictionary<string, Witness> witnesses, Member? quorum)
    {
        Logs = logs;
        Witnesses = witnesses;
        Quorum = quorum;
    }

    /// <summary>Parses the line format; errors name the line number.</summary>
    public static SigsumPolicy Parse(ReadOnlySpan<byte> utf8)
    {
        PackageFormatException.ThrowIfTooLarge(utf8.Length, Limits.MaxSigsumPolicyBytes, "Sigsum policy");
        string text;
        try { text = new UTF8Encoding(false, true).GetString(utf8); }
        catch (DecoderFallbackException e) { return PackageFormatException.Throw<SigsumPolicy>(FormatError.InvalidSigsum, "Sigsum policy is not UTF-8", e); }

        var logs = new Dictionary<string, byte[]>();
        var witnessesByHash = new Dictionary<string, Witness>();
        var names = new Dictionary<string, Member>(StringComparer.Ordinal);
        Member? quorum = null;
        bool quorumSeen = false;
        int lineNumber = 0;
        foreach (string rawLine in text.Split('\n'))
        {
            lineNumber++;
            string line = rawLine;
            int hash = line.IndexOf('#');
            if (hash >= 0) line = line[..hash];
            string[] words = line.Split([' ', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0) continue;
            if (names.Count + logs.Count > Limits.MaxSigsumCosignatures)
                Fail(lineNumber, $"more than {Limits.MaxSigsumCosignatures} entries");
            switch (words[0])
            {
                case "log":
                    if (words.Length is < 2 or > 3) Fail(lineNumber, "expected: log <hex public key> [url]");
                    byte[] logKey = Key(words[1], lineNumber);
                    if (!logs.TryAdd(Hex.Encode(SHA256.HashData(logKey)), logKey)) Fail(lineNumber, "duplicate log key");
                    break;
                case "witness":
                    if (words.Length is < 3 or > 4) Fail(lineNumber, "expected: witness <name> <hex public key> [url]");
                    byte[] witnessKey = Key(words[2], lineNumber);
                    byte[] keyHash = SHA256.HashData(witnessKey);
                    var witness = new Witness(words[1], witnessKey, keyHash);
                    if (!names.TryAdd(words[1], witness)) Fail(lineNumber, $"name \"{words[1]}\" is defined twice");
                    if (!witnessesByHash.TryAdd(Hex.Encode(keyHash), witness)) Fail(lineNumber, "duplicate witness key");
                    break;
                case "group":
                    if (words.Length < 4) Fail(lineNumber, "expected: group <name> <k|all|any> <member>...");
                    var members = new List<Member>();
                    foreach (string memberName in words.AsSpan(3))
                    {
                        // Members must be defined earlier, so the graph cannot have cycles.
                        if (!names.TryGetValue(memberName, out var member)) Fail(lineNumber, $"unknown member \"{memberName}\"");
                        if (members.Contains(member!)) Fail(lineNumber, $"member \"{memberName}\" listed twice");
                        members.Add(member!);
                    }
                    int threshold = words[2] switch
                    {
                        "all" => members.Count,
                        "any" => 1,
                        _ => int.TryParse(words[2], out int k) && k >= 1 && k <= members.Count ? k
                            : Fail<int>(lineNumber, $"threshold \"{words[2]}\" must be all, any or 1..{members.Count}"),
                    };
                    if (!names.TryAdd(words[1], new Group(words[1], threshold, members))) Fail(lineNumber, $"name \"{words[1]}\" is defined twice");
                    break;
                case "quorum":
                    if (words.Length != 2) Fail(lineNumber, "expected: quorum <name|none>");
                    if (quorumSeen) Fail(lineNumber, "quorum is given twice");
                    quorumSeen = true;
                    if (words[1] != "none")
                        quorum = names.TryGetValue(words[1], out var q) ? q : Fail<Member>(lineNumber, $"unknown quorum \"{words[1]}\"");
                    break;
                default:
                    Fail(lineNumber, $"unknown keyword \"{words[0]}\"");
                    break;
            }
        }
        if (logs.Count == 0) PackageFormatException.Throw(FormatError.InvalidSigsum, "Sigsum policy names no log");
        if (!quorumSeen) PackageFormatException.Throw(FormatError.InvalidSigsum, "Sigsum policy has no quorum line (use \"quorum none\" to need no witnesses)");
        return new SigsumPolicy(logs, witnessesByHash, quorum);
    }

    /// <summary>True when the witnesses whose key hashes are in <paramref name="cosigned"/> satisfy the quorum.</summary>
    public bool QuorumMet(IReadOnlySet<string> cosigned) => Quorum is null || IsSatisfied(Quorum, cosigned);

    private static bool IsSatisfied(Member member, IReadOnlySet<string> cosigned) => member switch
    {
        Witness w => cosigned.Contains(Hex.Encode(w.KeyHash)),
        Group g => g.Members.Count(m => IsSatisfied(m, cosigned)) >= g.Threshold,
        _ => false,
    };

    private static byte[] Key(string hex, int line) =>
        hex.Length == 64 && hex.All(Uri.IsHexDigit) ? Convert.FromHexString(hex) : Fail<byte[]>(line, "public key must be 64 hex digits");

    private static void Fail(int line, string why) => Fail<int>(line, why);

    private static T Fail<T>(int line, string why) =>
        PackageFormatException.Throw<T>(FormatError.InvalidSigsum, $"Sigsum policy line {line}: {why}");
}

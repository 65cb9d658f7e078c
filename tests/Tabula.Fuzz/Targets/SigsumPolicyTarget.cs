using Tabula.Packaging;
using Tabula.Packaging.Crypto;

namespace Tabula.Fuzz.Targets;

/// <summary>Sigsum policy text; an accepted policy's logs and witnesses have keys of the right size.</summary>
public static class SigsumPolicyTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        SigsumPolicy policy;
        try { policy = SigsumPolicy.Parse(input); }
        catch (PackageFormatException) { return false; }

        FuzzFinding.Check(policy.Logs.Values.All(k => k.Length == Ed25519.PublicKeySize)
            && policy.Witnesses.Values.All(w => w.PublicKey.Length == Ed25519.PublicKeySize && w.KeyHash.Length == 32),
            "Sigsum policy: a key of the wrong size accepted", input);
        FuzzFinding.Check(policy.Quorum is null || QuorumHolds(policy.Quorum, 0), "Sigsum policy: a group threshold out of range", input);
        return true;
    }

    static bool QuorumHolds(SigsumPolicy.Member member, int depth) => member switch
    {
        SigsumPolicy.Group g => depth < 64 && g.Threshold >= 1 && g.Threshold <= g.Members.Count && g.Members.All(m => QuorumHolds(m, depth + 1)),
        _ => true,
    };
}

using Tabula.Packaging;

namespace Tabula.Fuzz.Targets;

/// <summary>trust_policy.json (and the legacy keys); only valid policies may come out.</summary>
public static class TrustPolicyTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        TrustPolicy policy;
        try { policy = TrustPolicy.Parse(input); }
        catch (PackageFormatException) { return false; }

        FuzzFinding.Check(policy.SignatureThreshold is >= 1 and <= Limits.MaxSignatures, "trust policy: threshold out of range", input);
        FuzzFinding.Check(Enum.IsDefined(policy.FetchMethod), "trust policy: unknown fetch method", input);
        FuzzFinding.Check(TrustPolicy.Parse(input) == policy, "trust policy: two parses differ", input);
        return true;
    }
}

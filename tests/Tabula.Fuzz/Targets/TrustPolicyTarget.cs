using Tabula.Packaging;

namespace Tabula.Fuzz.Targets;

/// <summary>trust_policy.json (and the legacy keys); only valid policies may come out; a freshness object round-trips.</summary>
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
        if (policy.Freshness is { } freshness)
        {
            FuzzFinding.Check(Releases.IsValidFloor(freshness.MinRelease) && FreshnessPolicy.IsValidTicketUrl(freshness.TicketUrl)
                && (freshness.MachineClass is null || Releases.IsValidMachineClass(freshness.MachineClass)), "trust policy: bad freshness accepted", input);
            if (!policy.IsLegacy)
                FuzzFinding.Check(TrustPolicy.Parse(policy.ToJson()) == policy, "trust policy: parse, write, parse changed the freshness", input);
        }
        return true;
    }
}

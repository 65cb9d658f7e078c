using Tabula.Packaging;

namespace Tabula.Fuzz.Targets;

/// <summary>Descriptor JSON; an accepted descriptor written back and parsed again is the same descriptor.</summary>
public static class DescriptorTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        Descriptor descriptor;
        try { descriptor = Descriptor.Parse(input); }
        catch (PackageFormatException) { return false; }

        var again = Descriptor.Parse(descriptor.ToJson());
        FuzzFinding.Check(again.OsPackageUrl == descriptor.OsPackageUrl
            && again.Certificates.SequenceEqual(descriptor.Certificates)
            && again.Signatures.SequenceEqual(descriptor.Signatures), "descriptor: parse, write, parse changed it", input);
        FuzzFinding.Check(descriptor.Certificates.Count == descriptor.Signatures.Count, "descriptor: arrays of different lengths accepted", input);
        return true;
    }
}

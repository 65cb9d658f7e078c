using Tabula.Packaging;

namespace Tabula.Fuzz.Targets;

/// <summary>manifest.json; an accepted manifest written back and parsed again is the same manifest.</summary>
public static class ManifestTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        Manifest manifest;
        try { manifest = Manifest.Parse(input); }
        catch (PackageFormatException) { return false; }

        FuzzFinding.Check(Manifest.Parse(manifest.ToJson()) == manifest, "manifest: parse, write, parse changed it", input);
        FuzzFinding.Check(manifest.KernelPath.Length > 0 && manifest.InitramfsPath.Length > 0 && !manifest.Cmdline.Contains('\0'),
            "manifest: empty path or NUL in cmdline accepted", input);
        return true;
    }
}

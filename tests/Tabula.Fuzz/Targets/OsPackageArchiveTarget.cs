using Tabula.Packaging;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// An OS package zip: open and validate, then extract kernel and initramfs as stboot does. Extraction re-checks
/// CRC and length; what it writes must match the sizes the validated entry list promised.
/// </summary>
public static class OsPackageArchiveTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        try
        {
            using var archive = OsPackageArchive.Open(new MemoryStream(input.ToArray(), writable: false));
            FuzzFinding.Check(Manifest.Parse(archive.Manifest.ToJson()) == archive.Manifest, "archive: its manifest does not round-trip", input);
            foreach (string path in new[] { archive.Manifest.KernelPath, archive.Manifest.InitramfsPath })
            {
                var entry = archive.Entries.SingleOrDefault(e => e.Name == path);
                FuzzFinding.Check(entry is { IsDirectory: false, Size: > 0 }, $"archive: manifest entry is not a listed non-empty file", input);
                long written = archive.Extract(path, Stream.Null);
                FuzzFinding.Check(written == entry.Size, "archive: extracted length differs from the entry's size", input);
            }
            return true;
        }
        catch (PackageFormatException) { return false; }
    }
}

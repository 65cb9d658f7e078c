using System.Buffers;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;

namespace Tabula.Packaging;

/// <summary>One entry of an archive as its central directory describes it.</summary>
public sealed record ArchiveEntry(string Name, long Size, long CompressedSize, bool IsDirectory);

/// <summary>
/// A validated OS package archive. <see cref="Open"/> checks every entry name (no traversal, no
/// duplicates), the size and expansion limits (zip bombs), reads and validates manifest.json and
/// checks that the kernel and initramfs it names are present and non-empty. Extraction re-checks
/// sizes and CRC-32 while reading, so a central directory that lies cannot make us read more.
/// Disposing closes the underlying stream.
/// </summary>
public sealed class OsPackageArchive : IDisposable
{
    private readonly ZipArchive zip;

    /// <summary>The validated manifest.</summary>
    public Manifest Manifest { get; }

    /// <summary>All entries, in archive order.</summary>
    public IReadOnlyList<ArchiveEntry> Entries { get; }

    private OsPackageArchive(ZipArchive zip, Manifest manifest, IReadOnlyList<ArchiveEntry> entries)
    {
        this.zip = zip;
        Manifest = manifest;
        Entries = entries;
    }

    /// <summary>Opens and validates an archive from a seekable stream (taking ownership of it).</summary>
    public static OsPackageArchive Open(Stream archive)
    {
        if (!archive.CanSeek) throw new ArgumentException("the archive stream must be seekable", nameof(archive));
        PackageFormatException.ThrowIfTooLarge(archive.Length, Limits.MaxArchiveBytes, "OS package archive");
        ZipArchive zip;
        try { zip = new ZipArchive(archive, ZipArchiveMode.Read, leaveOpen: false, Encoding.UTF8); }
        catch (InvalidDataException e) { return PackageFormatException.Throw<OsPackageArchive>(FormatError.InvalidArchive, $"not a valid zip archive: {e.Message}", e); }
        try
        {
            var entries = ValidateEntries(zip);
            var manifestEntry = zip.GetEntry("manifest.json")
                ?? PackageFormatException.Throw<ZipArchiveEntry>(FormatError.MissingEntry, "archive has no manifest.json");
            PackageFormatException.ThrowIfTooLarge(manifestEntry.Length, Limits.MaxManifestBytes, "manifest.json");
            var manifest = Manifest.Parse(ReadEntry(manifestEntry, Limits.MaxManifestBytes));
            foreach (var (path, what) in new[] { (manifest.KernelPath, "kernel"), (manifest.InitramfsPath, "initramfs") })
            {
                var entry = zip.GetEntry(path);
                if (entry is null || entry.FullName.EndsWith('/'))
                    PackageFormatException.Throw(FormatError.MissingEntry, $"manifest.json names {what} \"{path}\" but the archive has no such file");
                if (entry.Length == 0)
                    PackageFormatException.Throw(FormatError.MissingEntry, $"{what} \"{path}\" is empty");
            }
            return new OsPackageArchive(zip, manifest, entries);
        }
        catch
        {
            zip.Dispose();
            throw;
        }
    }

    /// <summary>Copies the kernel, decompressed, into <paramref name="destination"/>.</summary>
    public long ExtractKernel(Stream destination) => Extract(Manifest.KernelPath, destination);

    /// <summary>Copies the initramfs, decompressed, into <paramref name="destination"/>.</summary>
    public long ExtractInitramfs(Stream destination) => Extract(Manifest.InitramfsPath, destination);

    /// <summary>Copies one entry, decompressed, into <paramref name="destination"/>; returns its size.</summary>
    public long Extract(string name, Stream destination)
    {
        var entry = zip.GetEntry(name) ?? PackageFormatException.Throw<ZipArchiveEntry>(FormatError.MissingEntry, $"archive has no entry \"{name}\"");
        return CopyChecked(entry, destination);
    }

    /// <inheritdoc/>
    public void Dispose() => zip.Dispose();

    private static List<ArchiveEntry> ValidateEntries(ZipArchive zip)
    {
        var entries = new List<ArchiveEntry>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        long total = 0;
        foreach (var entry in ListEntries(zip))
        {
            if (entries.Count == Limits.MaxArchiveEntries)
                PackageFormatException.Throw(FormatError.TooLarge, $"archive has more than {Limits.MaxArchiveEntries} entries");
            string name = entry.FullName;
            CheckName(name);
            if (!names.Add(name))
                PackageFormatException.Throw(FormatError.DuplicateEntry, $"archive has two entries named \"{name}\"");
            if (entry.Length > Limits.MaxEntryBytes)
                PackageFormatException.Throw(FormatError.ZipBomb, $"entry \"{name}\" expands to {entry.Length} bytes, over the {Limits.MaxEntryBytes}-byte limit");
            if (entry.Length > (1 << 20) && entry.Length / Math.Max(entry.CompressedLength, 1) > Limits.MaxCompressionRatio)
                PackageFormatException.Throw(FormatError.ZipBomb, $"entry \"{name}\" expands {entry.Length / Math.Max(entry.CompressedLength, 1)}-fold, over the limit of {Limits.MaxCompressionRatio}");
            total += entry.Length;
            if (total > Limits.MaxTotalUncompressedBytes)
                PackageFormatException.Throw(FormatError.ZipBomb, $"archive expands to more than {Limits.MaxTotalUncompressedBytes} bytes");
            entries.Add(new ArchiveEntry(name, entry.Length, entry.CompressedLength, name.EndsWith('/')));
        }
        return entries;
    }

    private static IReadOnlyCollection<ZipArchiveEntry> ListEntries(ZipArchive zip)
    {
        try { return zip.Entries; }
        catch (InvalidDataException e) { return PackageFormatException.Throw<IReadOnlyCollection<ZipArchiveEntry>>(FormatError.InvalidArchive, $"zip central directory is damaged: {e.Message}", e); }
    }

    /// <summary>Entry names must stay inside the archive: relative, '/'-separated, no '.' or '..' segments.</summary>
    internal static void CheckName(string name)
    {
        if (name.Length == 0 || Encoding.UTF8.GetByteCount(name) > Limits.MaxEntryNameBytes)
            PackageFormatException.Throw(FormatError.UnsafeEntryName, $"archive entry name is empty or longer than {Limits.MaxEntryNameBytes} bytes");
        if (name[0] == '/' || name.Contains('\\') || name.Contains('\0') || (name.Length > 1 && name[1] == ':'))
            PackageFormatException.Throw(FormatError.UnsafeEntryName, $"archive entry name \"{Printable(name)}\" is absolute or uses a forbidden character");
        string trimmed = name.EndsWith('/') ? name[..^1] : name;
        foreach (var segment in trimmed.Split('/'))
            if (segment is "" or "." or "..")
                PackageFormatException.Throw(FormatError.UnsafeEntryName, $"archive entry name \"{Printable(name)}\" has an empty, '.' or '..' path segment");
    }

    private static string Printable(string name)
    {
        var builder = new StringBuilder(Math.Min(name.Length, 80));
        foreach (char c in name.AsSpan(0, Math.Min(name.Length, 80)))
            builder.Append(char.IsControl(c) ? '?' : c);
        return builder.ToString();
    }

    private static byte[] ReadEntry(ZipArchiveEntry entry, int limit)
    {
        using var buffer = new MemoryStream((int)Math.Min(entry.Length, limit));
        CopyChecked(entry, buffer);
        return buffer.ToArray();
    }

    private static long CopyChecked(ZipArchiveEntry entry, Stream destination)
    {
        var crc = new Crc32();
        long copied = 0;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            using var source = entry.Open();
            int read;
            while ((read = source.Read(buffer)) > 0)
            {
                copied += read;
                if (copied > entry.Length)
                    PackageFormatException.Throw(FormatError.ZipBomb, $"entry \"{entry.FullName}\" holds more data than its declared {entry.Length} bytes");
                crc.Append(buffer.AsSpan(0, read));
                destination.Write(buffer, 0, read);
            }
        }
        catch (InvalidDataException e)
        {
            PackageFormatException.Throw(FormatError.InvalidArchive, $"entry \"{entry.FullName}\" is damaged: {e.Message}", e);
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
        if (copied != entry.Length)
            PackageFormatException.Throw(FormatError.InvalidArchive, $"entry \"{entry.FullName}\" is truncated: {copied} of {entry.Length} bytes");
        if (crc.GetCurrentHashAsUInt32() != entry.Crc32)
            PackageFormatException.Throw(FormatError.InvalidArchive, $"entry \"{entry.FullName}\" fails its CRC-32 check");
        return copied;
    }
}

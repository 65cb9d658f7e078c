using System.IO.Compression;
using System.Text;

namespace Tabula.Packaging.Cpio;

/// <summary>
/// Collects entries, then writes one deterministic cpio archive in the newc format (070701) that the kernel
/// unpacks as an initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
/// </summary>
/// <remarks>
/// Determinism: entries are written in ordinal path order whatever order they were added in; parent directories
/// are implied (0755); every entry has uid and gid 0, the same mtime (<see cref="ModificationTime"/>), nlink 1
/// (2 for directories) and an inode number by position; the archive ends with TRAILER!!!. The same entries
/// therefore give the same bytes, and archives can be concatenated (the trailer resets hard-link tracking).
/// </remarks>
public sealed class CpioArchive
{
    const string Magic = "070701";
    const int HeaderSize = 110;
    const uint TypeFile = 0x8000, TypeDirectory = 0x4000, TypeSymbolicLink = 0xA000, TypeCharacterDevice = 0x2000;

    readonly Dictionary<string, CpioEntry> entries = new(StringComparer.Ordinal);

    /// <summary>Creates an archive whose entries all carry <paramref name="modificationTime"/> (seconds since 1970).</summary>
    public CpioArchive(uint modificationTime = 0) => ModificationTime = modificationTime;

    /// <summary>The mtime written for every entry.</summary>
    public uint ModificationTime { get; }

    /// <summary>The explicitly added entries, in no particular order.</summary>
    public IReadOnlyCollection<CpioEntry> Entries => entries.Values;

    /// <summary>Adds a file with content held in memory.</summary>
    public CpioArchive AddFile(string path, ReadOnlyMemory<byte> data, UnixFileMode mode = DefaultFileMode) =>
        Add(new CpioEntry(Normalize(path), CpioEntryKind.File, mode) { Data = data });

    /// <summary>Adds a file whose content is read from <paramref name="sourcePath"/> when the archive is written.</summary>
    public CpioArchive AddFileFrom(string path, string sourcePath, UnixFileMode mode = DefaultFileMode)
    {
        ArgumentException.ThrowIfNullOrEmpty(sourcePath);
        return Add(new CpioEntry(Normalize(path), CpioEntryKind.File, mode) { SourcePath = sourcePath });
    }

    /// <summary>Adds a directory (only needed for an empty one or another mode: parents are implied).</summary>
    public CpioArchive AddDirectory(string path, UnixFileMode mode = DefaultDirectoryMode) =>
        Add(new CpioEntry(Normalize(path), CpioEntryKind.Directory, mode));

    /// <summary>Adds a symbolic link to <paramref name="target"/>.</summary>
    public CpioArchive AddSymbolicLink(string path, string target) =>
        Add(new CpioEntry(Normalize(path), CpioEntryKind.SymbolicLink, (UnixFileMode)0x1FF) { Data = Encoding.UTF8.GetBytes(target) });

    /// <summary>Adds a character device node, e.g. dev/console 5:1 so PID 1 starts with a console.</summary>
    public CpioArchive AddCharacterDevice(string path, int major, int minor, UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite) =>
        Add(new CpioEntry(Normalize(path), CpioEntryKind.CharacterDevice, mode) { DeviceMajor = major, DeviceMinor = minor });

    /// <summary>Mode for files unless given: 0644.</summary>
    public const UnixFileMode DefaultFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>Mode for executables: 0755.</summary>
    public const UnixFileMode ExecutableMode = DefaultDirectoryMode;

    /// <summary>Mode for directories unless given: 0755.</summary>
    public const UnixFileMode DefaultDirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    /// <summary>
    /// Writes the archive (entries sorted, parents implied, trailer) to <paramref name="destination"/>. Returns the
    /// number of bytes written: what the kernel unpacks into RAM, give or take the headers.
    /// </summary>
    public long WriteTo(Stream destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var counted = new CountingStream(destination);
        uint inode = 1;
        foreach (CpioEntry entry in Complete())
            WriteEntry(counted, entry, inode++);
        WriteHeader(counted, "TRAILER!!!", inode: 0, mode: 0, nlink: 1, mtime: 0, size: 0, rdevMajor: 0, rdevMinor: 0);
        return counted.Written;
    }

    /// <summary>
    /// Writes the archive gzip-compressed and returns its uncompressed size. The gzip header carries no name and
    /// mtime 0, so output is stable.
    /// </summary>
    public long WriteGzipTo(Stream destination, CompressionLevel level = CompressionLevel.Optimal)
    {
        using var gzip = new GZipStream(destination, level, leaveOpen: true);
        using var buffered = new BufferedStream(gzip, 1 << 16);
        return WriteTo(buffered);
    }

    /// <summary>The archive's bytes (for small archives and tests).</summary>
    public byte[] ToArray()
    {
        using var memory = new MemoryStream();
        WriteTo(memory);
        return memory.ToArray();
    }

    CpioArchive Add(CpioEntry entry)
    {
        if (!entries.TryAdd(entry.Path, entry))
            PackageFormatException.Throw(FormatError.DuplicateEntry, $"cpio: \"{entry.Path}\" added twice");
        return this;
    }

    IEnumerable<CpioEntry> Complete()
    {
        var all = new Dictionary<string, CpioEntry>(entries, StringComparer.Ordinal);
        foreach (CpioEntry entry in entries.Values)
        {
            for (int slash = entry.Path.LastIndexOf('/'); slash > 0; slash = entry.Path.LastIndexOf('/', slash - 1))
            {
                string parent = entry.Path[..slash];
                if (all.TryGetValue(parent, out CpioEntry? existing))
                {
                    if (existing.Kind != CpioEntryKind.Directory)
                        PackageFormatException.Throw(FormatError.DuplicateEntry, $"cpio: \"{parent}\" is not a directory but holds \"{entry.Path}\"");
                    continue;
                }
                all.Add(parent, new CpioEntry(parent, CpioEntryKind.Directory, DefaultDirectoryMode));
            }
        }
        return all.Values.OrderBy(e => e.Path, StringComparer.Ordinal);
    }

    void WriteEntry(Stream destination, CpioEntry entry, uint inode)
    {
        uint permissions = (uint)entry.Mode & 0xFFF;
        switch (entry.Kind)
        {
            case CpioEntryKind.Directory:
                WriteHeader(destination, entry.Path, inode, TypeDirectory | permissions, 2, ModificationTime, 0, 0, 0);
                break;
            case CpioEntryKind.CharacterDevice:
                WriteHeader(destination, entry.Path, inode, TypeCharacterDevice | permissions, 1, ModificationTime, 0,
                    (uint)entry.DeviceMajor, (uint)entry.DeviceMinor);
                break;
            case CpioEntryKind.SymbolicLink:
                WriteHeader(destination, entry.Path, inode, TypeSymbolicLink | permissions, 1, ModificationTime, (uint)entry.Data.Length, 0, 0);
                destination.Write(entry.Data.Span);
                Pad(destination, entry.Data.Length);
                break;
            case CpioEntryKind.File when entry.SourcePath is { } source:
                using (var file = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
                {
                    long length = file.Length;
                    CheckSize(entry.Path, length);
                    WriteHeader(destination, entry.Path, inode, TypeFile | permissions, 1, ModificationTime, (uint)length, 0, 0);
                    file.CopyTo(destination);
                    if (file.Position != length)
                        throw new IOException($"{source} changed size while being archived");
                    Pad(destination, length);
                }
                break;
            case CpioEntryKind.File:
                CheckSize(entry.Path, entry.Data.Length);
                WriteHeader(destination, entry.Path, inode, TypeFile | permissions, 1, ModificationTime, (uint)entry.Data.Length, 0, 0);
                destination.Write(entry.Data.Span);
                Pad(destination, entry.Data.Length);
                break;
        }
    }

    static void CheckSize(string path, long length)
    {
        if (length > Limits.MaxCpioFileBytes)
            PackageFormatException.Throw(FormatError.TooLarge, $"cpio: \"{path}\" has {length} bytes, over newc's limit of {Limits.MaxCpioFileBytes}");
    }

    static void WriteHeader(Stream destination, string name, uint inode, uint mode, uint nlink, uint mtime, uint size,
        uint rdevMajor, uint rdevMinor)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        int nameSize = nameBytes.Length + 1;
        var header = new StringBuilder(HeaderSize);
        header.Append(Magic);
        foreach (uint field in (ReadOnlySpan<uint>)[inode, mode, 0, 0, nlink, mtime, size, 0, 0, rdevMajor, rdevMinor, (uint)nameSize, 0])
            header.Append(field.ToString("X8", System.Globalization.CultureInfo.InvariantCulture));
        destination.Write(Encoding.ASCII.GetBytes(header.ToString()));
        destination.Write(nameBytes);
        destination.WriteByte(0);
        Pad(destination, HeaderSize + nameSize);
    }

    static void Pad(Stream destination, long written)
    {
        int padding = (int)((4 - (written & 3)) & 3);
        if (padding > 0)
            destination.Write(stackalloc byte[padding]);
    }

    /// <summary>Passes writes through and counts them (the destination may not know its position: gzip).</summary>
    sealed class CountingStream(Stream inner) : Stream
    {
        public long Written { get; private set; }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            Written += buffer.Length;
        }

        public override void WriteByte(byte value)
        {
            inner.WriteByte(value);
            Written++;
        }

        public override void Flush() => inner.Flush();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    static string Normalize(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string trimmed = path.TrimStart('/');
        while (trimmed.StartsWith("./", StringComparison.Ordinal))
            trimmed = trimmed[2..].TrimStart('/');
        if (trimmed.Length == 0 || trimmed.Split('/').Any(part => part is "" or "." or ".."))
            PackageFormatException.Throw(FormatError.UnsafeEntryName, $"cpio: \"{path}\" is not a relative path without empty, \".\" or \"..\" parts");
        if (Encoding.UTF8.GetByteCount(trimmed) > Limits.MaxCpioPathBytes)
            PackageFormatException.Throw(FormatError.TooLarge, $"cpio: a path of {trimmed.Length} characters is over PATH_MAX");
        return trimmed;
    }
}

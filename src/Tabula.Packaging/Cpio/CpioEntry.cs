namespace Tabula.Packaging.Cpio;

/// <summary>
/// One entry of an archive. File content is either in memory (<see cref="Data"/>) or read from
/// <see cref="SourcePath"/> when the archive is written, so large kernels are not held twice.
/// </summary>
public sealed record CpioEntry(string Path, CpioEntryKind Kind, UnixFileMode Mode)
{
    /// <summary>Content of a file, or the target of a symbolic link.</summary>
    public ReadOnlyMemory<byte> Data { get; init; }

    /// <summary>A file on the build machine whose bytes become this entry's content.</summary>
    public string? SourcePath { get; init; }

    /// <summary>Device major number (character devices).</summary>
    public int DeviceMajor { get; init; }

    /// <summary>Device minor number (character devices).</summary>
    public int DeviceMinor { get; init; }
}

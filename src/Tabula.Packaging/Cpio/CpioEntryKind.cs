namespace Tabula.Packaging.Cpio;

/// <summary>The kinds of entries an initramfs needs.</summary>
public enum CpioEntryKind
{
    /// <summary>A regular file.</summary>
    File,
    /// <summary>A directory.</summary>
    Directory,
    /// <summary>A symbolic link; the target is stored as the data.</summary>
    SymbolicLink,
    /// <summary>A character device node (e.g. /dev/console, 5:1).</summary>
    CharacterDevice,
}

using System.Buffers.Binary;

namespace Tabula.Linux.Efi;

/// <summary>
/// Reads EFI variables from an efivarfs mount. The directory is a parameter so tests aim it at a temporary
/// folder; mount efivarfs there first with <see cref="MountPoint.Mount"/> (type "efivarfs").
/// </summary>
public sealed class EfiVariables(string directory = EfiVariables.DefaultDirectory)
{
    /// <summary>Where efivarfs is mounted on a UEFI machine.</summary>
    public const string DefaultDirectory = "/sys/firmware/efi/efivars";

    /// <summary>The efivarfs directory read.</summary>
    public string Directory { get; } = directory;

    /// <summary>The file name efivarfs uses: <c>Name-guid</c> with the GUID in lower case.</summary>
    public static string FileName(string name, Guid vendor) => $"{name}-{vendor:D}";

    /// <summary>
    /// Reads <paramref name="name"/> under <paramref name="vendor"/>. Returns false when the variable (or efivarfs)
    /// does not exist; throws <see cref="KernelDataException"/> for a file without attributes or over
    /// <see cref="Limits.MaxEfiVariableBytes"/>.
    /// </summary>
    public bool TryRead(string name, Guid vendor, out EfiVariable? variable)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        string path = Path.Combine(Directory, FileName(name, vendor));
        variable = null;
        byte[] content;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
            content = ReadCapped(stream, path);
        }
        catch (FileNotFoundException) { return false; }
        catch (DirectoryNotFoundException) { return false; }

        if (content.Length < 4)
            KernelDataException.Throw(KernelDataError.EfiVariableTruncated, $"{path}: {content.Length} bytes");
        var attributes = (EfiVariableAttributes)BinaryPrimitives.ReadUInt32LittleEndian(content);
        variable = new EfiVariable(name, vendor, attributes, content[4..]);
        return true;
    }

    // efivarfs may report size 0 in stat, so read until end of file rather than trusting Length.
    static byte[] ReadCapped(Stream stream, string path)
    {
        byte[] buffer = new byte[Limits.MaxEfiVariableBytes + 1];
        int total = 0, n;
        while (total < buffer.Length && (n = stream.Read(buffer, total, buffer.Length - total)) > 0)
            total += n;
        if (total > Limits.MaxEfiVariableBytes)
            KernelDataException.Throw(KernelDataError.EfiVariableTooLarge, $"{path}: over {Limits.MaxEfiVariableBytes} bytes");
        return buffer[..total];
    }
}

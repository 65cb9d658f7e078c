using System.Buffers.Binary;
using System.Text;

namespace Tabula.Images.Uefi;

/// <summary>The parts of a UKI: the EFI stub and what goes in its sections.</summary>
/// <param name="Stub">The systemd EFI stub (Debian's systemd-boot-efi: /usr/lib/systemd/boot/efi/linuxx64.efi.stub), unsigned.</param>
/// <param name="Kernel">The x86-64 bzImage (.linux).</param>
/// <param name="Initramfs">The stboot initramfs (.initrd).</param>
/// <param name="CommandLine">The kernel command line (.cmdline); under Secure Boot the stub ignores any other.</param>
public sealed record UkiInputs(byte[] Stub, byte[] Kernel, byte[] Initramfs, string CommandLine)
{
    /// <summary>The .osrel section: an os-release file (System Transparency's stmgr writes the same fields).</summary>
    public string OsRelease { get; init; } = UkiImage.DefaultOsRelease;
}

/// <summary>A UKI's sections, read back and checked.</summary>
public sealed record UkiSections(string OsRelease, string CommandLine, int InitramfsBytes, int KernelBytes, string? Sbat);

/// <summary>
/// A unified kernel image (UAPI group's UKI specification) in System Transparency's shape: one PE/COFF EFI program made
/// of the systemd EFI stub and the sections .osrel (NAME="stboot"), .cmdline, .initrd and .linux, in stmgr's order,
/// appended after the stub's own sections (whose .sbat, systemd's SBAT entries, stays as is). The stub finds the
/// sections by name, measures them into PCR 11 and boots .linux with .initrd and .cmdline.
///
/// Built in C# over <see cref="PeImage"/> rather than with objcopy: one owner of the PE layout (addresses aligned to
/// 4 KiB, SizeOfImage, the checksum), no tool version that changes the bytes, and the same reader checks what was
/// written. Same inputs, same bytes.
/// </summary>
public static class UkiImage
{
    /// <summary>Debian's systemd EFI stub (package systemd-boot-efi), unsigned: what <see cref="UkiInputs.Stub"/> is by default.</summary>
    public const string DebianStub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

    /// <summary>What .osrel holds unless the caller gives another (as stmgr's default, so ST tools see an stboot UKI).</summary>
    public const string DefaultOsRelease = "NAME=\"stboot\"\nPRETTY_NAME=\"System Transparency Boot Loader (Tabula)\"\nID=stboot\nBUILD_ID=rolling\n";

    /// <summary>The section names, in the order they are appended.</summary>
    public static readonly IReadOnlyList<string> SectionOrder = [".osrel", ".cmdline", ".initrd", ".linux"];

    /// <summary>Largest UKI accepted: the stub and firmware load it whole into RAM; kexec's own per-file cap.</summary>
    public const long MaxBytes = int.MaxValue;

    /// <summary>Builds the UKI and checks it by reading it back (<see cref="Read"/>).</summary>
    public static byte[] Build(UkiInputs inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var stub = PeImage.Parse(inputs.Stub, "EFI stub");
        if (stub.Subsystem != PeImage.SubsystemEfiApplication)
            ImageException.Throw(ImageError.PeMalformed, $"EFI stub: subsystem {stub.Subsystem} is not an EFI application (10)");
        foreach (string name in SectionOrder)
            if (stub.Find(name) is not null)
                ImageException.Throw(ImageError.PeMalformed, $"EFI stub: already has a {name} section (is it a UKI already?)");
        CheckKernel(inputs.Kernel, "kernel");
        if (inputs.Initramfs.Length == 0)
            ImageException.Throw(ImageError.UkiSectionInvalid, "initramfs: empty");
        CheckText(inputs.CommandLine, ".cmdline");
        CheckOsRelease(inputs.OsRelease);

        byte[] uki = stub.AppendSections(
        [
            (".osrel", Encoding.UTF8.GetBytes(inputs.OsRelease)),
            (".cmdline", Encoding.UTF8.GetBytes(inputs.CommandLine)),
            (".initrd", inputs.Initramfs),
            (".linux", inputs.Kernel),
        ]);
        Read(uki);
        return uki;
    }

    /// <summary>
    /// Reads a UKI's sections and checks each: the PE layout (every section inside the file, no overlap), an
    /// EFI application, .osrel with NAME=, .cmdline text without NUL, a non-empty .initrd, a bzImage in .linux
    /// (boot flag, "HdrS", protocol ≥ 2.11, relocatable, EFI handover, setup inside the section). A UKI with a corrupted or
    /// truncated section is refused with the section's name.
    /// </summary>
    public static UkiSections Read(byte[] uki)
    {
        ArgumentNullException.ThrowIfNull(uki);
        var image = PeImage.Parse(uki, "UKI");
        if (image.Subsystem != PeImage.SubsystemEfiApplication)
            ImageException.Throw(ImageError.PeMalformed, $"UKI: subsystem {image.Subsystem} is not an EFI application (10)");
        byte[] Section(string name)
        {
            byte[]? data = image.Find(name)?.Data(uki).ToArray();
            if (data is not { Length: > 0 })
                ImageException.Throw(ImageError.UkiSectionInvalid, $"UKI: no {name} section, or an empty one");
            return data;
        }

        string osRelease = Decode(Section(".osrel"), ".osrel");
        CheckOsRelease(osRelease);
        string cmdline = Decode(Section(".cmdline"), ".cmdline");
        CheckText(cmdline, ".cmdline");
        byte[] initrd = Section(".initrd");
        byte[] kernel = Section(".linux");
        CheckKernel(kernel, ".linux");
        string? sbat = image.Find(".sbat") is { } s ? Encoding.UTF8.GetString(s.Data(uki)).TrimEnd('\0') : null;
        return new UkiSections(osRelease, cmdline, initrd.Length, kernel.Length, sbat);
    }

    static string Decode(byte[] data, string name)
    {
        try { return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(data); }
        catch (DecoderFallbackException) { ImageException.Throw(ImageError.UkiSectionInvalid, $"{name}: not UTF-8 text"); return ""; }
    }

    static void CheckText(string text, string name)
    {
        if (text.Length == 0 || text.Contains('\0'))
            ImageException.Throw(ImageError.UkiSectionInvalid, $"{name}: empty or holds a NUL byte");
    }

    static void CheckOsRelease(string osRelease)
    {
        CheckText(osRelease, ".osrel");
        if (!osRelease.Split('\n').Any(l => l.StartsWith("NAME=", StringComparison.Ordinal)))
            ImageException.Throw(ImageError.UkiSectionInvalid, ".osrel: no NAME= line (os-release(5))");
    }

    /// <summary>The x86 boot protocol's setup header (Documentation/arch/x86/boot.rst), as systemd-stub checks it before the EFI handover.</summary>
    static void CheckKernel(byte[] kernel, string name)
    {
        if (kernel.Length < 0x268)
            ImageException.Throw(ImageError.UkiSectionInvalid, $"{name}: {kernel.Length} bytes is too short for a bzImage");
        var k = kernel.AsSpan();
        if (BinaryPrimitives.ReadUInt16LittleEndian(k[0x1fe..]) != 0xaa55 || BinaryPrimitives.ReadUInt32LittleEndian(k[0x202..]) != 0x53726448)
            ImageException.Throw(ImageError.UkiSectionInvalid, $"{name}: no x86 boot setup header (boot_flag 0xAA55, \"HdrS\"): not a bzImage, or corrupted");
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(k[0x206..]);
        if (version < 0x20b)
            ImageException.Throw(ImageError.UkiSectionInvalid, $"{name}: boot protocol {version >> 8}.{version & 0xff} is older than 2.11 (no EFI handover)");
        int setupSectors = k[0x1f1] == 0 ? 4 : k[0x1f1];
        if ((setupSectors + 1) * 512 >= kernel.Length)
            ImageException.Throw(ImageError.UkiSectionInvalid, $"{name}: setup of {setupSectors} sectors leaves no protected-mode kernel (truncated?)");
        if (k[0x234] == 0)
            ImageException.Throw(ImageError.UkiSectionInvalid, $"{name}: not relocatable (relocatable_kernel is 0)");
        if ((BinaryPrimitives.ReadUInt16LittleEndian(k[0x236..]) & 0x8) == 0 || BinaryPrimitives.ReadUInt32LittleEndian(k[0x264..]) == 0)
            ImageException.Throw(ImageError.UkiSectionInvalid, $"{name}: no 64-bit EFI handover entry (XLF_EFI_HANDOVER_64, handover_offset): systemd-stub 252 cannot start it");
        uint payloadOffset = BinaryPrimitives.ReadUInt32LittleEndian(k[0x248..]);
        uint payloadLength = BinaryPrimitives.ReadUInt32LittleEndian(k[0x24c..]);
        if ((ulong)(setupSectors + 1) * 512 + payloadOffset + payloadLength > (ulong)kernel.Length)
            ImageException.Throw(ImageError.UkiSectionInvalid, $"{name}: compressed payload 0x{payloadOffset:x}+0x{payloadLength:x} runs past the end of the {kernel.Length} bytes (truncated)");
    }
}

using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Tabula.Images.Uefi;

/// <summary>One section of a PE/COFF image: its name, where the loader maps it, and where its bytes are in the file.</summary>
/// <param name="Name">Up to 8 ASCII bytes (".linux").</param>
/// <param name="VirtualAddress">RVA the loader maps it at.</param>
/// <param name="VirtualSize">Bytes mapped (the data's length for sections we add).</param>
/// <param name="RawOffset">File offset of its bytes (PointerToRawData).</param>
/// <param name="RawSize">Bytes in the file (SizeOfRawData, a multiple of FileAlignment).</param>
/// <param name="Characteristics">IMAGE_SCN_* flags.</param>
public sealed record PeSection(string Name, uint VirtualAddress, uint VirtualSize, uint RawOffset, uint RawSize, uint Characteristics)
{
    /// <summary>The section's own bytes: VirtualSize of them (the file keeps padding up to RawSize).</summary>
    public ReadOnlySpan<byte> Data(ReadOnlySpan<byte> image) => image.Slice((int)RawOffset, (int)Math.Min(VirtualSize, RawSize));
}

/// <summary>
/// The one owner of the PE/COFF format in Tabula (Microsoft PE/COFF specification, "PE Format"): reads the headers and
/// the section table of a PE32+ image, checks that every section lies inside the file and that sections do not
/// overlap, appends initialized data sections (the UKI's .osrel, .cmdline, .initrd, .linux), and computes the
/// optional header's checksum. Only what a UKI needs: no relocation or import processing. Deterministic: the same
/// stub and sections give the same bytes (the timestamp of the stub is kept, nothing reads the clock).
/// Errors are <see cref="ImageException"/> with <see cref="ImageError.PeMalformed"/> naming the field.
/// </summary>
public sealed class PeImage
{
    const ushort MachineAmd64 = 0x8664;
    const ushort Pe32Plus = 0x20b;
    const int CoffHeaderSize = 20;
    const int SectionHeaderSize = 40;
    // Offsets inside the PE32+ optional header (PE Format, "Optional Header Windows-Specific Fields").
    const int OptSizeOfInitializedData = 8;
    const int OptSectionAlignment = 32;
    const int OptFileAlignment = 36;
    const int OptSizeOfImage = 56;
    const int OptSizeOfHeaders = 60;
    const int OptCheckSum = 64;
    const int OptSubsystem = 68;
    const int OptNumberOfRvaAndSizes = 108;
    const int OptDataDirectories = 112;
    const int CertificateTableDirectory = 4;

    /// <summary>IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ: what a UKI's added sections are.</summary>
    public const uint InitializedReadOnlyData = 0x00000040 | 0x40000000;

    /// <summary>EFI application (IMAGE_SUBSYSTEM_EFI_APPLICATION).</summary>
    public const ushort SubsystemEfiApplication = 10;

    readonly byte[] bytes;
    readonly int peOffset;
    readonly int optionalOffset;
    readonly int sectionTableOffset;

    PeImage(byte[] bytes, int peOffset, int optionalOffset, int sectionTableOffset, List<PeSection> sections)
    {
        this.bytes = bytes;
        this.peOffset = peOffset;
        this.optionalOffset = optionalOffset;
        this.sectionTableOffset = sectionTableOffset;
        Sections = sections;
    }

    /// <summary>The section table in file order.</summary>
    public IReadOnlyList<PeSection> Sections { get; }

    /// <summary>The image's bytes (not copied: do not change them).</summary>
    public ReadOnlySpan<byte> Bytes => bytes;

    /// <summary>IMAGE_OPTIONAL_HEADER.Subsystem.</summary>
    public ushort Subsystem => U16(optionalOffset + OptSubsystem);

    /// <summary>SectionAlignment.</summary>
    public uint SectionAlignment => U32(optionalOffset + OptSectionAlignment);

    /// <summary>FileAlignment.</summary>
    public uint FileAlignment => U32(optionalOffset + OptFileAlignment);

    /// <summary>SizeOfImage.</summary>
    public uint SizeOfImage => U32(optionalOffset + OptSizeOfImage);

    /// <summary>SizeOfHeaders.</summary>
    public uint SizeOfHeaders => U32(optionalOffset + OptSizeOfHeaders);

    /// <summary>The checksum stored in the optional header.</summary>
    public uint StoredChecksum => U32(optionalOffset + OptCheckSum);

    /// <summary>The certificate table (Authenticode signatures): file offset and size, (0, 0) when unsigned.</summary>
    public (uint Offset, uint Size) CertificateTable =>
        NumberOfDirectories > CertificateTableDirectory
            ? (U32(optionalOffset + OptDataDirectories + 8 * CertificateTableDirectory), U32(optionalOffset + OptDataDirectories + 8 * CertificateTableDirectory + 4))
            : (0, 0);

    uint NumberOfDirectories => U32(optionalOffset + OptNumberOfRvaAndSizes);

    /// <summary>The first section called <paramref name="name"/>, or null.</summary>
    public PeSection? Find(string name) => Sections.FirstOrDefault(s => s.Name == name);

    /// <summary>
    /// Parses <paramref name="image"/> (kept, not copied). Refuses anything that is not a PE32+ image for x86-64 whose
    /// headers and sections lie inside the file, with sections in ascending, non-overlapping order.
    /// </summary>
    public static PeImage Parse(byte[] image, string what)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Length < 0x40 || image[0] != 'M' || image[1] != 'Z')
            Fail(what, "no MZ header");
        int pe = BinaryPrimitives.ReadInt32LittleEndian(image.AsSpan(0x3c));
        if (pe < 0x40 || pe > image.Length - 4 - CoffHeaderSize || BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(pe)) != 0x00004550)
            Fail(what, "no PE signature at e_lfanew");
        var coff = image.AsSpan(pe + 4, CoffHeaderSize);
        ushort machine = BinaryPrimitives.ReadUInt16LittleEndian(coff);
        ushort count = BinaryPrimitives.ReadUInt16LittleEndian(coff[2..]);
        ushort optionalSize = BinaryPrimitives.ReadUInt16LittleEndian(coff[16..]);
        if (machine != MachineAmd64)
            Fail(what, $"machine 0x{machine:x4} is not x86-64 (0x8664)");
        int optional = pe + 4 + CoffHeaderSize;
        if (optionalSize < OptDataDirectories || optional + optionalSize > image.Length)
            Fail(what, $"optional header of {optionalSize} bytes does not fit");
        if (BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(optional)) != Pe32Plus)
            Fail(what, "not PE32+ (optional header magic 0x20b)");
        int table = optional + optionalSize;
        if (table + count * SectionHeaderSize > image.Length)
            Fail(what, $"section table of {count} entries runs past the end of the file");
        uint sectionAlignment = BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(optional + OptSectionAlignment));
        uint fileAlignment = BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(optional + OptFileAlignment));
        uint sizeOfImage = BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(optional + OptSizeOfImage));
        uint sizeOfHeaders = BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(optional + OptSizeOfHeaders));
        if (!IsPowerOfTwo(fileAlignment) || !IsPowerOfTwo(sectionAlignment) || fileAlignment > sectionAlignment)
            Fail(what, $"alignments invalid (file 0x{fileAlignment:x}, section 0x{sectionAlignment:x})");
        if (sizeOfHeaders < table + count * SectionHeaderSize || sizeOfHeaders > image.Length)
            Fail(what, $"SizeOfHeaders 0x{sizeOfHeaders:x} does not cover the section table");

        var sections = new List<PeSection>(count);
        uint lastVirtualEnd = 0;
        for (int i = 0; i < count; i++)
        {
            var header = image.AsSpan(table + i * SectionHeaderSize, SectionHeaderSize);
            string name = Encoding.ASCII.GetString(header[..8]).TrimEnd('\0');
            uint virtualSize = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
            uint virtualAddress = BinaryPrimitives.ReadUInt32LittleEndian(header[12..]);
            uint rawSize = BinaryPrimitives.ReadUInt32LittleEndian(header[16..]);
            uint rawOffset = BinaryPrimitives.ReadUInt32LittleEndian(header[20..]);
            uint characteristics = BinaryPrimitives.ReadUInt32LittleEndian(header[36..]);
            string label = name.Length > 0 ? name : $"#{i}";
            if (rawSize > 0 && ((ulong)rawOffset + rawSize > (ulong)image.Length || rawOffset < sizeOfHeaders))
                Fail(what, $"section {label}: bytes 0x{rawOffset:x}+0x{rawSize:x} lie outside the file of 0x{image.Length:x} bytes (truncated or corrupted)");
            // Not checked: alignment of a section's address to SectionAlignment. Debian's systemd 252 stub has .sdmagic at
            // 0x19100 with SectionAlignment 0x200 and EDK2 loads it; sections we add are aligned.
            if (virtualAddress < lastVirtualEnd)
                Fail(what, $"section {label}: address 0x{virtualAddress:x} overlaps the previous section (which ends at 0x{lastVirtualEnd:x})");
            // The loader maps VirtualSize bytes (the file's RawSize is padded to FileAlignment); 0 means RawSize.
            ulong virtualEnd = (ulong)virtualAddress + (virtualSize != 0 ? virtualSize : rawSize);
            if (virtualEnd > sizeOfImage)
                Fail(what, $"section {label}: ends at 0x{virtualEnd:x}, past SizeOfImage 0x{sizeOfImage:x}");
            lastVirtualEnd = (uint)virtualEnd;
            sections.Add(new PeSection(name, virtualAddress, virtualSize, rawOffset, rawSize, characteristics));
        }
        return new PeImage(image, pe, optional, table, sections);
    }

    /// <summary>
    /// A new image: this one with <paramref name="added"/> appended as initialized read-only data sections, in the
    /// order given. Each starts at the next SectionAlignment-aligned address after the image (rounded up to
    /// <paramref name="addressAlignment"/>, 4 KiB for a UKI: the stub hands the kernel page-aligned buffers) and at the
    /// next FileAlignment-aligned file offset; NumberOfSections, SizeOfImage, SizeOfInitializedData and the checksum are
    /// updated. Refuses a signed image (appending would void its signature: sign afterwards) and a header with no room
    /// for the new section headers.
    /// </summary>
    public byte[] AppendSections(IReadOnlyList<(string Name, byte[] Data)> added, uint addressAlignment = 4096)
    {
        ArgumentNullException.ThrowIfNull(added);
        if (CertificateTable.Size != 0)
            ImageException.Throw(ImageError.PeMalformed, "the stub is signed: sections cannot be added without voiding its signature (sign the UKI instead)");
        int count = Sections.Count + added.Count;
        if (count > ushort.MaxValue || sectionTableOffset + count * SectionHeaderSize > SizeOfHeaders)
            ImageException.Throw(ImageError.PeMalformed, $"the stub's headers (0x{SizeOfHeaders:x} bytes) have no room for {added.Count} more section headers");
        uint align = Math.Max(SectionAlignment, addressAlignment);
        if (!IsPowerOfTwo(align))
            throw new ArgumentOutOfRangeException(nameof(addressAlignment), "must be a power of two");

        // The stub's own bytes end at its last section's raw data (anything after it, such as a debug tail, is dropped:
        // a loader never reads it and Authenticode would hash it as trailing data).
        uint fileEnd = Sections.Count == 0 ? SizeOfHeaders : Sections.Max(s => s.RawOffset + s.RawSize);
        fileEnd = AlignUp(fileEnd, FileAlignment);
        ulong address = AlignUp(SizeOfImage, align);
        var placed = new List<PeSection>(added.Count);
        ulong offset = fileEnd;
        foreach (var (name, data) in added)
        {
            if (name.Length is 0 or > 8 || !name.All(char.IsAscii))
                throw new ArgumentException($"section name \"{name}\" must be 1-8 ASCII characters", nameof(added));
            ulong rawSize = AlignUp((ulong)data.Length, FileAlignment);
            if (address + (ulong)data.Length > uint.MaxValue || offset + rawSize > int.MaxValue)
                ImageException.Throw(ImageError.InputInvalid, $"section {name} of {data.Length} bytes makes the image larger than PE32+ allows");
            placed.Add(new PeSection(name, (uint)address, (uint)data.Length, (uint)offset, (uint)rawSize, InitializedReadOnlyData));
            offset += rawSize;
            address = AlignUp(address + (ulong)data.Length, align);
        }

        byte[] output = new byte[offset];
        bytes.AsSpan(0, (int)Math.Min(fileEnd, (uint)bytes.Length)).CopyTo(output);
        for (int i = 0; i < placed.Count; i++)
        {
            var s = placed[i];
            var header = output.AsSpan(sectionTableOffset + (Sections.Count + i) * SectionHeaderSize, SectionHeaderSize);
            header.Clear();
            Encoding.ASCII.GetBytes(s.Name, header[..8]);
            BinaryPrimitives.WriteUInt32LittleEndian(header[8..], s.VirtualSize);
            BinaryPrimitives.WriteUInt32LittleEndian(header[12..], s.VirtualAddress);
            BinaryPrimitives.WriteUInt32LittleEndian(header[16..], s.RawSize);
            BinaryPrimitives.WriteUInt32LittleEndian(header[20..], s.RawOffset);
            BinaryPrimitives.WriteUInt32LittleEndian(header[36..], s.Characteristics);
            added[i].Data.CopyTo(output.AsSpan((int)s.RawOffset));
        }
        BinaryPrimitives.WriteUInt16LittleEndian(output.AsSpan(peOffset + 4 + 2), (ushort)count);
        uint sizeOfImage = (uint)AlignUp(placed[^1].VirtualAddress + (ulong)placed[^1].VirtualSize, SectionAlignment);
        BinaryPrimitives.WriteUInt32LittleEndian(output.AsSpan(optionalOffset + OptSizeOfImage), sizeOfImage);
        uint initialized = U32(optionalOffset + OptSizeOfInitializedData);
        foreach (var s in placed)
            initialized = (uint)Math.Min(uint.MaxValue, (ulong)initialized + s.RawSize);
        BinaryPrimitives.WriteUInt32LittleEndian(output.AsSpan(optionalOffset + OptSizeOfInitializedData), initialized);
        BinaryPrimitives.WriteUInt32LittleEndian(output.AsSpan(optionalOffset + OptCheckSum), Checksum(output, optionalOffset + OptCheckSum));
        return output;
    }

    /// <summary>The checksum the PE optional header holds for <paramref name="image"/> (the field at <paramref name="checksumOffset"/>
    /// counts as zero): 16-bit one's-complement sum of the file's 16-bit words, folded, plus the file length
    /// (imagehlp's CheckSumMappedFile, as ukify and sbsign compute it).</summary>
    public static uint Checksum(ReadOnlySpan<byte> image, int checksumOffset)
    {
        ulong sum = 0;
        int i = 0;
        for (; i + 1 < image.Length; i += 2)
        {
            if (i == checksumOffset || i == checksumOffset + 2)
                continue;
            sum += BinaryPrimitives.ReadUInt16LittleEndian(image[i..]);
            sum = (sum & 0xffff) + (sum >> 16);
        }
        if (i < image.Length)
        {
            sum += image[i];
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum = (sum & 0xffff) + (sum >> 16);
        return (uint)(sum + (ulong)image.Length);
    }

    /// <summary>The checksum this image should carry (compare with <see cref="StoredChecksum"/>).</summary>
    public uint ComputeChecksum() => Checksum(bytes, optionalOffset + OptCheckSum);

    static bool IsPowerOfTwo(uint value) => value != 0 && (value & (value - 1)) == 0;

    static uint AlignUp(uint value, uint alignment) => (uint)AlignUp((ulong)value, alignment);

    static ulong AlignUp(ulong value, uint alignment) => (value + alignment - 1) & ~((ulong)alignment - 1);

    ushort U16(int offset) => BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(offset));

    uint U32(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset));

    [DoesNotReturn]
    static void Fail(string what, string detail) => ImageException.Throw(ImageError.PeMalformed, $"{what}: {detail}");
}

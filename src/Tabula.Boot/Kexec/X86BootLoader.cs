using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Tabula.Linux;
using Tabula.Linux.Efi;

namespace Tabula.Boot.Kexec;

/// <summary>Why a bzImage could not be laid out for kexec_load (stboot then uses kexec_file_load).</summary>
internal sealed class KexecPlanException(string message) : Exception(message);

/// <summary>Where kexec_load puts things and where the CPU starts: the trampoline page.</summary>
internal sealed record KexecPlan(ulong Entry, IReadOnlyList<KexecSegment> Segments, string? Efi = null)
{
    /// <summary>The params segment's bytes, which hold the RNG seed: <see cref="ClearSecrets"/> zeroes them once the
    /// kernel has copied the segments (kexec_load returned), so the seed does not linger in stboot's heap.</summary>
    internal byte[]? Parameters { get; init; }

    public void ClearSecrets() => CryptographicOperations.ZeroMemory(Parameters);

    /// <summary>"kernel@0x1000000+0x3f98000 initramfs@… params@… trampoline@…" for the console line, then what was
    /// handed over of EFI ("efi=systab@0x… runtime_regions=N …") on an EFI-booted machine.</summary>
    public string Summary => string.Join(' ', Segments.Zip(["kernel", "initramfs", "params", "trampoline"],
        (s, name) => $"{name}@0x{s.Address:x}+0x{s.MemorySize:x}")) + (Efi is null ? "" : " " + Efi) +
        (Parameters is null ? "" : $" rng_seed={X86BootLoader.RngSeedSize}B");
}

/// <summary>
/// Lays out an x86-64 bzImage for kexec_load(2) the way kexec-tools does, without a purgatory
/// that hashes everything again. kexec_file_load makes the running kernel hash every segment up to its memory size (the
/// kernel's whole init_size, 63.6 MB for Debian's 6.1, almost all zeros), and its purgatory hashes the same again after
/// the jump in plain C: under TCG that is about 4 s before and 11 s after the jump. stboot has already verified the
/// package signatures over the archive, so the second and third hash add nothing this layout needs.
/// <list type="bullet">
/// <item>the protected-mode kernel (the bzImage after its setup sectors) at pref_address (or the first aligned spot
/// in RAM), with init_size of memory (zeroed by the kernel);</item>
/// <item>the initramfs right after it, below initrd_addr_max;</item>
/// <item>boot_params (the "zero page": the bzImage's setup header, the initramfs, the command line and the firmware's
/// e820 memory map from /sys/firmware/memmap) followed by the command line;</item>
/// <item>the trampoline page (trampoline.S): a flat GDT, %rsi = boot_params, jump to the 64-bit entry (load address +
/// 0x200).</item>
/// </list>
/// The boot protocol is Documentation/arch/x86/boot.rst and zero-page.rst.
/// <para>On an EFI-booted machine (<see cref="EfiBootState"/> given) the next kernel also gets what keeps UEFI's runtime
/// services, as the kernel's own kexec_file_load passes it (arch/x86/kernel/kexec-bzimage64.c setup_efi_state): in
/// boot_params, efi_info (loader signature "EL64", the system table, and the runtime memory map, which follows the
/// command line in the params segment, 40-byte version-1 descriptors as kexec-tools writes them), acpi_rsdp_addr,
/// secure_boot and screen_info; and a SETUP_EFI setup_data record (struct efi_setup_data: the physical addresses of
/// the firmware vendor string, the configuration tables and SMBIOS, which the system table now holds as virtual ones)
/// linked from hdr.setup_data, after the memory map. The next kernel sees the SETUP_EFI record, maps the runtime
/// regions at the virtual addresses the first kernel gave them and does not call SetVirtualAddressMap again
/// (kexec_enter_virtual_mode). Runtime regions that the e820 map calls RAM (boot-services data the first kernel kept
/// for the firmware, efi_mem_reserve) are carved out of it as reserved, so neither the layout nor the next kernel
/// puts anything there.</para>
/// <para>Every layout also carries a SETUP_RNG_SEED record (32 bytes from getrandom), as kexec_file_load passes one
/// (kexec-bzimage64.c setup_rng_seed): the next kernel mixes it into its pool before anything else runs
/// (setup.c parse_setup_data, which then zeroes it), so the relay's WireGuard key, made early in its boot, does not
/// depend on the entropy a fresh kernel gathers by itself under emulation. It is first in the setup_data list.</para>
/// </summary>
internal static class X86BootLoader
{
    const ulong Page = 4096;
    const int SetupSectors = 0x1f1, HeaderMagic = 0x202, Version = 0x206, TypeOfLoader = 0x210, RamdiskImage = 0x218,
        RamdiskSize = 0x21c, CommandLinePointer = 0x228, InitrdAddressMax = 0x22c, KernelAlignment = 0x230, Relocatable = 0x234,
        XLoadFlags = 0x236, CommandLineSize = 0x238, PreferredAddress = 0x258, InitSize = 0x260, HeaderEnd = 0x268;
    const int E820Entries = 0x1e8, E820Table = 0x2d0, E820Max = 128, BootParamsSize = 4096;
    const int ExtMemK = 0x02, AcpiRsdpAddress = 0x70, EfiInfo = 0x1c0, SecureBoot = 0x1ec, SetupData = 0x250;
    const uint Efi64LoaderSignature = 0x34364c45, SetupEfi = 4, SetupRngSeed = 9;
    internal const int RngSeedSize = 32;
    const int SetupDataHeaderSize = 16, EfiSetupDataSize = 96;   // struct setup_data; struct efi_setup_data (asm/efi.h)
    const ushort KernelXLoad64 = 0x1;
    const ulong FourGiB = 1UL << 32;

    /// <summary>trampoline.S assembled (clang -c; objcopy -O binary -j .text): code, GDT descriptor, GDT, then the two
    /// patched words; the rest of the page is its stack.</summary>
    static ReadOnlySpan<byte> Trampoline =>
    [
        0x48, 0x8d, 0x05, 0x59, 0x00, 0x00, 0x00, 0x48, 0x89, 0x05, 0x44, 0x00, 0x00, 0x00, 0x0f, 0x01, 0x15, 0x3b, 0x00, 0x00,
        0x00, 0xb8, 0x18, 0x00, 0x00, 0x00, 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, 0x8e, 0xe0, 0x8e, 0xe8, 0x48, 0x8d, 0x25, 0x65,
        0x01, 0x00, 0x00, 0x6a, 0x10, 0x48, 0x8d, 0x05, 0x03, 0x00, 0x00, 0x00, 0x50, 0x48, 0xcb, 0x48, 0x8b, 0x35, 0x42, 0x00,
        0x00, 0x00, 0x31, 0xed, 0x31, 0xff, 0xff, 0x25, 0x40, 0x00, 0x00, 0x00, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x1f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xcf, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xaf, 0x00,
        0xff, 0xff, 0x00, 0x00, 0x00, 0x92, 0xcf, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00,
    ];

    /// <summary>Offsets of the words the trampoline reads (nm trampoline.o: boot_params, kernel_entry).</summary>
    internal const int TrampolineBootParams = 0x80, TrampolineKernelEntry = 0x88;

    /// <summary>The trampoline as assembled, for the test that reassembles trampoline.S.</summary>
    internal static byte[] TrampolineBytes => Trampoline.ToArray();

    public static KexecPlan Plan(byte[] bzImage, ReadOnlyMemory<byte> initramfs, string commandLine, IReadOnlyList<FirmwareMemoryRange> memoryMap,
        EfiBootState? efi = null)
    {
        var image = bzImage.AsSpan();
        if (image.Length < HeaderEnd + 512 || BinaryPrimitives.ReadUInt32LittleEndian(image[HeaderMagic..]) != 0x53726448)
            throw new KexecPlanException("the kernel is not a bzImage (no HdrS setup header)");
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(image[Version..]);
        if (version < 0x020c)
            throw new KexecPlanException($"boot protocol {version >> 8}.{version & 0xff} is older than 2.12 (no 64-bit entry flag)");
        if ((BinaryPrimitives.ReadUInt16LittleEndian(image[XLoadFlags..]) & KernelXLoad64) == 0)
            throw new KexecPlanException("the kernel has no 64-bit entry point (XLF_KERNEL_64)");
        int setupSectors = image[SetupSectors] == 0 ? 4 : image[SetupSectors];
        int kernelOffset = (setupSectors + 1) * 512;
        if (kernelOffset >= image.Length)
            throw new KexecPlanException($"the setup sectors ({setupSectors}) run past the end of the kernel");
        var kernel = bzImage.AsMemory(kernelOffset);
        ulong initSize = BinaryPrimitives.ReadUInt32LittleEndian(image[InitSize..]);
        ulong alignment = Math.Max(BinaryPrimitives.ReadUInt32LittleEndian(image[KernelAlignment..]), (uint)Page);
        bool relocatable = image[Relocatable] != 0;
        ulong preferred = BinaryPrimitives.ReadUInt64LittleEndian(image[PreferredAddress..]);
        ulong initrdMax = BinaryPrimitives.ReadUInt32LittleEndian(image[InitrdAddressMax..]);
        uint commandLineMax = BinaryPrimitives.ReadUInt32LittleEndian(image[CommandLineSize..]);
        byte[] commandLineBytes = Encoding.UTF8.GetBytes(commandLine + "\0");
        if ((uint)commandLineBytes.Length > commandLineMax || commandLineBytes.Length > BootParamsSize)
            throw new KexecPlanException($"the command line ({commandLineBytes.Length} bytes) exceeds the kernel's cmdline_size {commandLineMax}");
        if (efi is not null)
            memoryMap = ReserveRuntimeRegions(memoryMap, efi.RuntimeMap);
        if (memoryMap.Count > E820Max)
            throw new KexecPlanException($"the memory map has {memoryMap.Count} entries; boot_params holds {E820Max}");

        ulong kernelSize = PageAlign(Math.Max(initSize, (ulong)kernel.Length));
        ulong initramfsSize = PageAlign((ulong)initramfs.Length);
        int efiMapOffset = (int)AlignUp((ulong)(BootParamsSize + commandLineBytes.Length), 16);
        int efiMapSize = efi is null ? 0 : efi.RuntimeMap.Count * EfiMemoryDescriptor.Size;
        int setupDataOffset = (int)AlignUp((ulong)(efiMapOffset + efiMapSize), 16);
        int rngOffset = (int)AlignUp((ulong)(efi is null ? BootParamsSize + commandLineBytes.Length : setupDataOffset + SetupDataHeaderSize + EfiSetupDataSize), 16);
        int paramsBytes = rngOffset + SetupDataHeaderSize + RngSeedSize;
        ulong paramsSize = PageAlign((ulong)paramsBytes);
        ulong total = kernelSize + initramfsSize + paramsSize + Page;
        ulong load = FindLoadAddress(memoryMap, preferred, relocatable, alignment, total)
                     ?? throw new KexecPlanException($"no RAM range below 4 GiB holds {total >> 20} MiB at a {alignment >> 20} MiB-aligned address");
        ulong initramfsAt = load + kernelSize, paramsAt = initramfsAt + initramfsSize, trampolineAt = paramsAt + paramsSize;
        if (initramfsAt + (ulong)initramfs.Length - 1 > initrdMax)
            throw new KexecPlanException($"the initramfs would end above initrd_addr_max 0x{initrdMax:x}");

        byte[] parameters = new byte[paramsSize];
        var header = image[SetupSectors..Math.Min(0x202 + image[0x201], BootParamsSize)];
        header.CopyTo(parameters.AsSpan(SetupSectors));
        parameters[TypeOfLoader] = 0xff;   // "undefined" loader: any non-zero value makes the kernel use the initramfs
        BinaryPrimitives.WriteUInt32LittleEndian(parameters.AsSpan(RamdiskImage), (uint)initramfsAt);
        BinaryPrimitives.WriteUInt32LittleEndian(parameters.AsSpan(RamdiskSize), (uint)initramfs.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(parameters.AsSpan(CommandLinePointer), (uint)(paramsAt + BootParamsSize));
        parameters[E820Entries] = (byte)memoryMap.Count;
        for (int i = 0; i < memoryMap.Count; i++)
        {
            var entry = parameters.AsSpan(E820Table + i * 20, 20);
            BinaryPrimitives.WriteUInt64LittleEndian(entry, memoryMap[i].Start);
            BinaryPrimitives.WriteUInt64LittleEndian(entry[8..], memoryMap[i].End - memoryMap[i].Start + 1);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[16..], E820Type(memoryMap[i].Type));
        }
        commandLineBytes.CopyTo(parameters.AsSpan(BootParamsSize));
        string? efiSummary = null;
        if (efi is not null)
        {
            WriteEfi(parameters, paramsAt, efi, efiMapOffset, setupDataOffset);
            efiSummary = $"efi=systab@0x{efi.SystemTable:x} runtime_regions={efi.RuntimeMap.Count} rsdp@0x{efi.AcpiRsdp:x}";
        }
        WriteRngSeed(parameters, paramsAt, rngOffset);

        byte[] trampoline = new byte[Page];
        Trampoline.CopyTo(trampoline);
        BinaryPrimitives.WriteUInt64LittleEndian(trampoline.AsSpan(TrampolineBootParams), paramsAt);
        BinaryPrimitives.WriteUInt64LittleEndian(trampoline.AsSpan(TrampolineKernelEntry), load + 0x200);

        return new KexecPlan(trampolineAt,
        [
            new KexecSegment(kernel, load, kernelSize),
            new KexecSegment(initramfs, initramfsAt, initramfsSize),
            new KexecSegment(parameters, paramsAt, paramsSize),
            new KexecSegment(trampoline, trampolineAt, Page),
        ], efiSummary) { Parameters = parameters };
    }

    /// <summary>A SETUP_RNG_SEED record at <paramref name="offset"/>, put at the head of hdr.setup_data's list.</summary>
    static void WriteRngSeed(byte[] parameters, ulong paramsAt, int offset)
    {
        var span = parameters.AsSpan();
        var record = span.Slice(offset, SetupDataHeaderSize + RngSeedSize);
        BinaryPrimitives.WriteUInt64LittleEndian(record, BinaryPrimitives.ReadUInt64LittleEndian(span[SetupData..]));   // next: the rest of the list
        BinaryPrimitives.WriteUInt32LittleEndian(record[8..], SetupRngSeed);
        BinaryPrimitives.WriteUInt32LittleEndian(record[12..], RngSeedSize);
        RandomNumberGenerator.Fill(record[SetupDataHeaderSize..]);
        BinaryPrimitives.WriteUInt64LittleEndian(span[SetupData..], paramsAt + (ulong)offset);
    }

    /// <summary>efi_info, acpi_rsdp_addr, secure_boot and screen_info in boot_params; the runtime memory map at
    /// <paramref name="mapOffset"/>; the SETUP_EFI record at <paramref name="setupOffset"/>, linked from hdr.setup_data.
    /// Offsets are into the params segment, loaded at <paramref name="paramsAt"/>.</summary>
    static void WriteEfi(byte[] parameters, ulong paramsAt, EfiBootState efi, int mapOffset, int setupOffset)
    {
        var span = parameters.AsSpan();
        efi.ScreenInfo.Span[..Math.Min(efi.ScreenInfo.Length, EfiBootState.ScreenInfoSize)].CopyTo(span);
        BinaryPrimitives.WriteUInt16LittleEndian(span[ExtMemK..], 0);   // 16-bit memory size, for loaders older than e820
        BinaryPrimitives.WriteUInt64LittleEndian(span[AcpiRsdpAddress..], efi.AcpiRsdp);
        span[SecureBoot] = efi.SecureBoot;

        ulong mapAt = paramsAt + (ulong)mapOffset;
        var info = span.Slice(EfiInfo, 32);
        BinaryPrimitives.WriteUInt32LittleEndian(info, Efi64LoaderSignature);
        BinaryPrimitives.WriteUInt32LittleEndian(info[4..], (uint)efi.SystemTable);
        BinaryPrimitives.WriteUInt32LittleEndian(info[8..], EfiMemoryDescriptor.Size);
        BinaryPrimitives.WriteUInt32LittleEndian(info[12..], efi.MemoryDescriptorVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(info[16..], (uint)mapAt);
        BinaryPrimitives.WriteUInt32LittleEndian(info[20..], (uint)(efi.RuntimeMap.Count * EfiMemoryDescriptor.Size));
        BinaryPrimitives.WriteUInt32LittleEndian(info[24..], (uint)(efi.SystemTable >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(info[28..], (uint)(mapAt >> 32));
        for (int i = 0; i < efi.RuntimeMap.Count; i++)
        {
            var d = efi.RuntimeMap[i];
            var entry = span.Slice(mapOffset + i * EfiMemoryDescriptor.Size, EfiMemoryDescriptor.Size);
            BinaryPrimitives.WriteUInt32LittleEndian(entry, d.Type);                 // 4 bytes of padding follow
            BinaryPrimitives.WriteUInt64LittleEndian(entry[8..], d.PhysicalStart);
            BinaryPrimitives.WriteUInt64LittleEndian(entry[16..], d.VirtualStart);
            BinaryPrimitives.WriteUInt64LittleEndian(entry[24..], d.Pages);
            BinaryPrimitives.WriteUInt64LittleEndian(entry[32..], d.Attribute);
        }

        var record = span.Slice(setupOffset, SetupDataHeaderSize + EfiSetupDataSize);
        BinaryPrimitives.WriteUInt64LittleEndian(record, 0);                          // next: the end of the list
        BinaryPrimitives.WriteUInt32LittleEndian(record[8..], SetupEfi);
        BinaryPrimitives.WriteUInt32LittleEndian(record[12..], EfiSetupDataSize);
        BinaryPrimitives.WriteUInt64LittleEndian(record[16..], efi.FirmwareVendor);   // fw_vendor
        BinaryPrimitives.WriteUInt64LittleEndian(record[24..], 0);                    // __unused (was runtime)
        BinaryPrimitives.WriteUInt64LittleEndian(record[32..], efi.ConfigurationTables);
        BinaryPrimitives.WriteUInt64LittleEndian(record[40..], efi.Smbios);           // reserved[8] stay zero
        BinaryPrimitives.WriteUInt64LittleEndian(span[SetupData..], paramsAt + (ulong)setupOffset);
    }

    /// <summary>The map with every runtime region that overlaps RAM cut out of the RAM range as "Reserved"
    /// (boot-services data the first kernel reserved for the firmware, e.g. ESRT or the TPM event log, is RAM in the
    /// firmware's e820 map but is in the runtime map).</summary>
    internal static IReadOnlyList<FirmwareMemoryRange> ReserveRuntimeRegions(IReadOnlyList<FirmwareMemoryRange> map, IReadOnlyList<EfiMemoryDescriptor> runtime)
    {
        var regions = runtime.OrderBy(d => d.PhysicalStart).ToArray();
        var result = new List<FirmwareMemoryRange>(map.Count + regions.Length * 2);
        foreach (var range in map)
        {
            if (!range.IsRam)
            {
                result.Add(range);
                continue;
            }
            ulong cursor = range.Start;
            bool done = false;
            foreach (var region in regions)
            {
                if (region.End < cursor || region.PhysicalStart > range.End)
                    continue;
                if (region.PhysicalStart > cursor)
                    result.Add(range with { Start = cursor, End = region.PhysicalStart - 1 });
                ulong end = Math.Min(region.End, range.End);
                result.Add(new FirmwareMemoryRange(Math.Max(region.PhysicalStart, cursor), end, "Reserved"));
                if (end == range.End)
                {
                    done = true;
                    break;
                }
                cursor = end + 1;
            }
            if (!done)
                result.Add(range with { Start = cursor });
        }
        return result;
    }

    /// <summary>pref_address when all of it fits in one RAM range; otherwise, for a relocatable kernel, the lowest aligned
    /// address at or above 16 MiB where it fits. Everything stays below 4 GiB (32-bit boot_params pointers).</summary>
    static ulong? FindLoadAddress(IReadOnlyList<FirmwareMemoryRange> map, ulong preferred, bool relocatable, ulong alignment, ulong size)
    {
        bool Fits(ulong at) => at % alignment == 0 && at + size <= FourGiB &&
                               map.Any(r => r.IsRam && r.Start <= at && at + size - 1 <= r.End);
        if (Fits(preferred))
            return preferred;
        if (!relocatable)
            return null;
        foreach (var range in map.Where(r => r.IsRam))
        {
            ulong at = Math.Max(AlignUp(range.Start, alignment), 16UL << 20);
            if (Fits(at))
                return at;
        }
        return null;
    }

    /// <summary>The e820 type for a /sys/firmware/memmap type name (drivers/firmware/memmap.c); unknown names are reserved.</summary>
    internal static uint E820Type(string name) => name switch
    {
        "System RAM" => 1,
        "ACPI Tables" => 3,
        "ACPI Non-volatile Storage" => 4,
        "Unusable memory" => 5,
        "Persistent Memory" => 7,
        "Persistent Memory (legacy)" => 12,
        "Soft Reserved" => 0xefffffff,
        _ => 2,
    };

    static ulong PageAlign(ulong value) => AlignUp(value, Page);

    static ulong AlignUp(ulong value, ulong alignment) => (value + alignment - 1) / alignment * alignment;
}

using System.Buffers.Binary;
using System.Text;
using Tabula.Linux;

namespace Tabula.Boot.Kexec;

/// <summary>Why a bzImage could not be laid out for kexec_load (stboot then uses kexec_file_load).</summary>
internal sealed class KexecPlanException(string message) : Exception(message);

/// <summary>Where kexec_load puts things and where the CPU starts: the trampoline page.</summary>
internal sealed record KexecPlan(ulong Entry, IReadOnlyList<KexecSegment> Segments)
{
    /// <summary>"kernel@0x1000000+0x3f98000 initramfs@… params@… entry@…" for the console line.</summary>
    public string Summary => string.Join(' ', Segments.Zip(["kernel", "initramfs", "params", "trampoline"],
        (s, name) => $"{name}@0x{s.Address:x}+0x{s.MemorySize:x}"));
}

/// <summary>
/// Lays out an x86-64 bzImage for kexec_load(2) the way kexec-tools does for BIOS-booted machines, without a purgatory
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
/// The boot protocol is Documentation/arch/x86/boot.rst and zero-page.rst. EFI-booted machines need more in
/// boot_params (EFI system table, memory map); there stboot keeps kexec_file_load.
/// </summary>
internal static class X86BootLoader
{
    const ulong Page = 4096;
    const int SetupSectors = 0x1f1, HeaderMagic = 0x202, Version = 0x206, TypeOfLoader = 0x210, RamdiskImage = 0x218,
        RamdiskSize = 0x21c, CommandLinePointer = 0x228, InitrdAddressMax = 0x22c, KernelAlignment = 0x230, Relocatable = 0x234,
        XLoadFlags = 0x236, CommandLineSize = 0x238, PreferredAddress = 0x258, InitSize = 0x260, HeaderEnd = 0x268;
    const int E820Entries = 0x1e8, E820Table = 0x2d0, E820Max = 128, BootParamsSize = 4096;
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

    public static KexecPlan Plan(byte[] bzImage, ReadOnlyMemory<byte> initramfs, string commandLine, IReadOnlyList<FirmwareMemoryRange> memoryMap)
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
        if (memoryMap.Count > E820Max)
            throw new KexecPlanException($"the memory map has {memoryMap.Count} entries; boot_params holds {E820Max}");

        ulong kernelSize = PageAlign(Math.Max(initSize, (ulong)kernel.Length));
        ulong initramfsSize = PageAlign((ulong)initramfs.Length);
        ulong paramsSize = PageAlign((ulong)(BootParamsSize + commandLineBytes.Length));
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
        ]);
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

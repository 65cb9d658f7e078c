using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Tabula.Boot.Kexec;
using Tabula.Linux;
using Tabula.Linux.Efi;
using Tabula.Testing;

namespace Tabula.Boot.Tests;

/// <summary>
/// stboot's kexec_load layout (Kexec/X86BootLoader.cs) against the real Debian guest kernel: where each segment goes,
/// what boot_params says, that the trampoline is trampoline.S as clang assembles it, and the refusals that send stboot
/// back to kexec_file_load. The QEMU end-to-end tests boot through it.
/// </summary>
public sealed class X86BootLoaderTests
{
    static readonly FirmwareMemoryRange[] QemuMap =
    [
        new(0x0, 0x9fbff, "System RAM"), new(0x9fc00, 0xfffff, "Reserved"), new(0x100000, 0x3ffdffff, "System RAM"),
        new(0x3ffe0000, 0x3fffffff, "Reserved"), new(0xfeffc000, 0xfeffffff, "Reserved"), new(0xfffc0000, 0xffffffff, "Reserved"),
    ];

    [GuestKernelFact]
    public void Debian_kernel_is_laid_out_at_its_preferred_address_with_boot_params_for_the_64_bit_entry()
    {
        byte[] kernel = File.ReadAllBytes(GuestKernel.Require().KernelPath);
        byte[] initramfs = new byte[5_000_001];
        const string cmdline = "console=ttyS0 panic=-1 quiet -- marker";
        var plan = X86BootLoader.Plan(kernel, initramfs, cmdline, QemuMap);

        var (image, ramdisk, parameters, trampoline) = (plan.Segments[0], plan.Segments[1], plan.Segments[2], plan.Segments[3]);
        ulong initSize = BinaryPrimitives.ReadUInt32LittleEndian(kernel.AsSpan(0x260));
        int setupBytes = ((kernel[0x1f1] == 0 ? 4 : kernel[0x1f1]) + 1) * 512;
        Assert.Equal(BinaryPrimitives.ReadUInt64LittleEndian(kernel.AsSpan(0x258)), image.Address);   // pref_address
        Assert.True(image.MemorySize >= initSize, $"kernel memory 0x{image.MemorySize:x} < init_size 0x{initSize:x}");
        Assert.True(image.Buffer.Span.SequenceEqual(kernel.AsSpan(setupBytes)));
        Assert.Equal(trampoline.Address, plan.Entry);
        ulong previousEnd = 0;
        foreach (var segment in plan.Segments)
        {
            Assert.Equal(0UL, segment.Address % 4096);
            Assert.Equal(0UL, segment.MemorySize % 4096);
            Assert.True(segment.Address >= previousEnd, "segments overlap or are out of order");
            Assert.True((ulong)segment.Buffer.Length <= segment.MemorySize);
            previousEnd = segment.Address + segment.MemorySize;
        }
        Assert.True(previousEnd <= 0x3ffe0000, "a segment runs past the RAM range");

        var zeroPage = parameters.Buffer.Span;
        Assert.Equal(0xff, zeroPage[0x210]);                                                           // type_of_loader
        Assert.Equal((uint)ramdisk.Address, BinaryPrimitives.ReadUInt32LittleEndian(zeroPage[0x218..]));
        Assert.Equal((uint)initramfs.Length, BinaryPrimitives.ReadUInt32LittleEndian(zeroPage[0x21c..]));
        Assert.True(zeroPage[0x1f1..0x210].SequenceEqual(kernel.AsSpan(0x1f1..0x210)), "the setup header is not the kernel's");
        Assert.True(zeroPage[0x230..0x250].SequenceEqual(kernel.AsSpan(0x230..0x250)), "alignment, xloadflags, cmdline_size differ");
        Assert.True(zeroPage[0x258..0x268].SequenceEqual(kernel.AsSpan(0x258..0x268)), "pref_address, init_size differ");   // 0x250: setup_data, ours
        uint commandLineAt = BinaryPrimitives.ReadUInt32LittleEndian(zeroPage[0x228..]);
        int commandLineOffset = (int)(commandLineAt - parameters.Address);
        Assert.Equal(cmdline + "\0", Encoding.UTF8.GetString(zeroPage.Slice(commandLineOffset, cmdline.Length + 1)));
        Assert.Equal(QemuMap.Length, zeroPage[0x1e8]);
        for (int i = 0; i < QemuMap.Length; i++)
        {
            var entry = zeroPage.Slice(0x2d0 + i * 20, 20);
            Assert.Equal(QemuMap[i].Start, BinaryPrimitives.ReadUInt64LittleEndian(entry));
            Assert.Equal(QemuMap[i].End - QemuMap[i].Start + 1, BinaryPrimitives.ReadUInt64LittleEndian(entry[8..]));
            Assert.Equal(QemuMap[i].IsRam ? 1u : 2u, BinaryPrimitives.ReadUInt32LittleEndian(entry[16..]));
        }
        Assert.Equal(0, zeroPage[0x1ef]);   // sentinel: the kernel would wipe fields a loader forgot to clear

        var page = trampoline.Buffer.Span;
        Assert.Equal(parameters.Address, BinaryPrimitives.ReadUInt64LittleEndian(page[X86BootLoader.TrampolineBootParams..]));
        Assert.Equal(image.Address + 0x200, BinaryPrimitives.ReadUInt64LittleEndian(page[X86BootLoader.TrampolineKernelEntry..]));

        // hdr.setup_data -> one SETUP_RNG_SEED record, the end of the list; a fresh seed per plan, zeroed after the load
        var (seedRecord, seedOffset) = RngSeedRecord(plan);
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(seedRecord));
        Assert.True(seedOffset >= commandLineOffset + cmdline.Length + 1, "the seed overlaps the command line");
        byte[] seed = seedRecord[16..].ToArray();
        Assert.Contains(seed, b => b != 0);
        Assert.NotEqual(Convert.ToHexString(seed), Convert.ToHexString(RngSeedRecord(X86BootLoader.Plan(kernel, initramfs, cmdline, QemuMap)).Record[16..]));
        Assert.EndsWith(" rng_seed=32B", plan.Summary, StringComparison.Ordinal);
        plan.ClearSecrets();
        Assert.All(parameters.Buffer.ToArray(), b => Assert.Equal(0, b));
    }

    /// <summary>The SETUP_RNG_SEED record hdr.setup_data points at (type 9, 32 bytes of seed), and its offset in the params
    /// segment.</summary>
    static (byte[] Record, int Offset) RngSeedRecord(KexecPlan plan)
    {
        var parameters = plan.Segments[2];
        byte[] page = parameters.Buffer.ToArray();
        int offset = (int)(BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(0x250)) - parameters.Address);
        Assert.True(offset > 0 && offset % 16 == 0 && offset + 16 + 32 <= page.Length, $"setup_data at offset {offset}");
        byte[] record = page.AsSpan(offset, 16 + 32).ToArray();
        Assert.Equal(9u, BinaryPrimitives.ReadUInt32LittleEndian(record.AsSpan(8)));
        Assert.Equal(32u, BinaryPrimitives.ReadUInt32LittleEndian(record.AsSpan(12)));
        return (record, offset);
    }

    /// <summary>An OVMF guest's firmware map (q35, 1 GiB) and runtime state, as stboot reads them under UefiTests.</summary>
    static readonly FirmwareMemoryRange[] OvmfMap =
    [
        new(0x0, 0x9ffff, "System RAM"), new(0x100000, 0x7fffff, "System RAM"), new(0x800000, 0x807fff, "ACPI Non-volatile Storage"),
        new(0x808000, 0x80afff, "System RAM"), new(0x80b000, 0x80bfff, "ACPI Non-volatile Storage"), new(0x80c000, 0x80ffff, "System RAM"),
        new(0x810000, 0x8fffff, "ACPI Non-volatile Storage"), new(0x900000, 0x3e8ebfff, "System RAM"), new(0x3e8ec000, 0x3eb1ffff, "Reserved"),
        new(0x3eb20000, 0x3f3fefff, "System RAM"), new(0x3f3ff000, 0x3f5fefff, "Reserved"), new(0x3f5ff000, 0x3f67efff, "ACPI Tables"),
        new(0x3f67f000, 0x3f6fefff, "ACPI Non-volatile Storage"), new(0x3f6ff000, 0x3ff5ffff, "System RAM"), new(0x3ff60000, 0x3fffffff, "Reserved"),
        new(0xb0000000, 0xbfffffff, "Reserved"), new(0xffc00000, 0xffffffff, "Reserved"),
    ];

    static EfiBootState OvmfState(byte secureBoot = 0) => new(
        SystemTable: 0x3f9ee018, MemoryDescriptorVersion: 1, FirmwareVendor: 0x3f9eeb98, ConfigurationTables: 0x3f9ee718,
        Smbios: 0x3f73d000, AcpiRsdp: 0x3f67e014, SecureBoot: secureBoot, ScreenInfo: Enumerable.Range(1, 64).Select(i => (byte)i).ToArray(),
        RuntimeMap:
        [
            new(5, 0x3e8ec000, 0xfffffffeffe00000, 0x90, 0x800000000000000f),    // runtime code, reserved in e820 already
            new(6, 0x3e97c000, 0xfffffffeffc00000, 0x1a4, 0x800000000000000f),   // runtime data
            new(4, 0x3ee00000, 0xfffffffeff800000, 0x2, 0x800000000000000f),      // boot-services data kept (efi_mem_reserve): RAM in e820
            new(11, 0xffc00000, 0xfffffffeff000000, 0x400, 0x8000000000000001),  // the flash, MMIO
        ]);

    [GuestKernelFact]
    public void On_efi_the_layout_hands_over_efi_info_the_runtime_map_and_a_setup_efi_record()
    {
        byte[] kernel = File.ReadAllBytes(GuestKernel.Require().KernelPath);
        var efi = OvmfState(secureBoot: 3);
        const string cmdline = "console=ttyS0 panic=-1 quiet";
        var plan = X86BootLoader.Plan(kernel, new byte[3_000_000], cmdline, OvmfMap, efi);
        var parameters = plan.Segments[2];
        var page = parameters.Buffer.Span;
        Assert.Contains("efi=systab@0x3f9ee018 runtime_regions=4 rsdp@0x3f67e014", plan.Summary, StringComparison.Ordinal);

        Assert.True(page[..0x40].SequenceEqual(efi.ScreenInfo.Span[..0x40].ToArray().Select((b, i) => i is 2 or 3 ? (byte)0 : b).ToArray()),
            "screen_info is the running kernel's, ext_mem_k cleared");
        Assert.Equal(0x3f67e014UL, BinaryPrimitives.ReadUInt64LittleEndian(page[0x70..]));            // acpi_rsdp_addr
        Assert.Equal(3, page[0x1ec]);                                                                 // secure_boot
        Assert.Equal("EL64", Encoding.ASCII.GetString(page.Slice(0x1c0, 4)));
        Assert.Equal(0x3f9ee018u, BinaryPrimitives.ReadUInt32LittleEndian(page[0x1c4..]));            // efi_systab
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(page[0x1d8..]));                     // efi_systab_hi
        Assert.Equal(40u, BinaryPrimitives.ReadUInt32LittleEndian(page[0x1c8..]));                    // efi_memdesc_size
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(page[0x1cc..]));                     // efi_memdesc_version
        ulong mapAt = BinaryPrimitives.ReadUInt32LittleEndian(page[0x1d0..]) | (ulong)BinaryPrimitives.ReadUInt32LittleEndian(page[0x1dc..]) << 32;
        Assert.Equal(160u, BinaryPrimitives.ReadUInt32LittleEndian(page[0x1d4..]));                   // efi_memmap_size: 4 x 40
        int mapOffset = (int)(mapAt - parameters.Address);
        uint commandLineAt = BinaryPrimitives.ReadUInt32LittleEndian(page[0x228..]);
        Assert.True(mapOffset >= (int)(commandLineAt - parameters.Address) + cmdline.Length + 1, "the map overlaps the command line");
        Assert.Equal(0, mapOffset % 16);
        for (int i = 0; i < efi.RuntimeMap.Count; i++)
        {
            var entry = page.Slice(mapOffset + i * 40, 40);
            var d = efi.RuntimeMap[i];
            Assert.Equal(d.Type, BinaryPrimitives.ReadUInt32LittleEndian(entry));
            Assert.Equal(d.PhysicalStart, BinaryPrimitives.ReadUInt64LittleEndian(entry[8..]));
            Assert.Equal(d.VirtualStart, BinaryPrimitives.ReadUInt64LittleEndian(entry[16..]));
            Assert.Equal(d.Pages, BinaryPrimitives.ReadUInt64LittleEndian(entry[24..]));
            Assert.Equal(d.Attribute, BinaryPrimitives.ReadUInt64LittleEndian(entry[32..]));
        }

        // hdr.setup_data -> the SETUP_RNG_SEED record -> one SETUP_EFI record (struct setup_data + struct efi_setup_data), end of the list
        var seed = RngSeedRecord(plan);
        ulong setupAt = BinaryPrimitives.ReadUInt64LittleEndian(seed.Record);
        int setupOffset = (int)(setupAt - parameters.Address);
        Assert.True(setupOffset >= mapOffset + 160 && setupOffset + 16 + 96 <= parameters.Buffer.Length, "the record overlaps the map or leaves the segment");
        var record = page.Slice(setupOffset, 16 + 96);
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(record));
        Assert.Equal(4u, BinaryPrimitives.ReadUInt32LittleEndian(record[8..]));
        Assert.Equal(96u, BinaryPrimitives.ReadUInt32LittleEndian(record[12..]));
        Assert.Equal(efi.FirmwareVendor, BinaryPrimitives.ReadUInt64LittleEndian(record[16..]));
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(record[24..]));
        Assert.Equal(efi.ConfigurationTables, BinaryPrimitives.ReadUInt64LittleEndian(record[32..]));
        Assert.Equal(efi.Smbios, BinaryPrimitives.ReadUInt64LittleEndian(record[40..]));
        Assert.All(record[48..].ToArray(), b => Assert.Equal(0, b));

        // e820: the kept boot-services page pair is reserved, cut out of its RAM range; everything else as the firmware said
        byte[] bytes = parameters.Buffer.ToArray();
        var e820 = Enumerable.Range(0, bytes[0x1e8]).Select(i => bytes.AsSpan(0x2d0 + i * 20, 20).ToArray())
            .Select(e => (Start: BinaryPrimitives.ReadUInt64LittleEndian(e), Size: BinaryPrimitives.ReadUInt64LittleEndian(e.AsSpan(8)), Type: BinaryPrimitives.ReadUInt32LittleEndian(e.AsSpan(16))))
            .ToArray();
        Assert.Equal(OvmfMap.Length + 2, e820.Length);
        Assert.Contains((0x3eb20000UL, 0x3ee00000UL - 0x3eb20000, 1u), e820);
        Assert.Contains((0x3ee00000UL, 0x2000UL, 2u), e820);
        Assert.Contains((0x3ee02000UL, 0x3f3ff000UL - 0x3ee02000, 1u), e820);
        foreach (var segment in plan.Segments)
            Assert.DoesNotContain(efi.RuntimeMap, d => d.PhysicalStart <= segment.Address + segment.MemorySize - 1 && segment.Address <= d.End);
    }

    [Fact]
    public void Runtime_regions_are_cut_out_of_ram_at_the_edges_the_middle_and_across_ranges()
    {
        FirmwareMemoryRange[] map = [new(0x0, 0x9ffff, "System RAM"), new(0x100000, 0x1fffff, "System RAM"), new(0x200000, 0x2fffff, "Reserved"), new(0x300000, 0x3fffff, "System RAM")];
        EfiMemoryDescriptor[] runtime =
        [
            new(6, 0x1ff000, 0, 1, 0), new(4, 0x100000, 0, 2, 0), new(5, 0x180000, 0, 0x10, 0),  // the end, the start, the middle
            new(5, 0x2f0000, 0, 0x20, 0),                                                          // from reserved into the next RAM range
        ];
        var carved = X86BootLoader.ReserveRuntimeRegions(map, runtime);
        Assert.Equal(
        [
            "0-9ffff System RAM", "100000-101fff Reserved", "102000-17ffff System RAM", "180000-18ffff Reserved", "190000-1fefff System RAM",
            "1ff000-1fffff Reserved", "200000-2fffff Reserved", "300000-30ffff Reserved", "310000-3fffff System RAM",
        ], carved.Select(r => $"{r.Start:x}-{r.End:x} {r.Type}"));
    }

    [GuestKernelFact]
    public void A_map_without_room_below_4_GiB_and_an_oversized_command_line_are_refused_with_the_reason()
    {
        byte[] kernel = File.ReadAllBytes(GuestKernel.Require().KernelPath);
        FirmwareMemoryRange[] small = [new(0x0, 0x9fbff, "System RAM"), new(0x100000, 0x1ffffff, "System RAM")];
        var noRoom = Assert.Throws<KexecPlanException>(() => X86BootLoader.Plan(kernel, new byte[1000], "quiet", small));
        Assert.Contains("no RAM range below 4 GiB", noRoom.Message, StringComparison.Ordinal);
        var tooLong = Assert.Throws<KexecPlanException>(() => X86BootLoader.Plan(kernel, new byte[1000], new string('x', 5000), QemuMap));
        Assert.Contains("cmdline_size", tooLong.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Something_that_is_not_a_bzImage_is_refused()
    {
        var e = Assert.Throws<KexecPlanException>(() => X86BootLoader.Plan(new byte[4096], new byte[10], "quiet", QemuMap));
        Assert.Contains("not a bzImage", e.Message, StringComparison.Ordinal);
        byte[] old = new byte[4096];
        "HdrS"u8.CopyTo(old.AsSpan(0x202));
        BinaryPrimitives.WriteUInt16LittleEndian(old.AsSpan(0x206), 0x0206);
        Assert.Contains("older than 2.12", Assert.Throws<KexecPlanException>(() => X86BootLoader.Plan(old, new byte[10], "quiet", QemuMap)).Message,
            StringComparison.Ordinal);
    }

    [Fact]
    public void Memory_map_names_become_e820_types_and_unknown_ones_stay_reserved()
    {
        Assert.Equal(1u, X86BootLoader.E820Type("System RAM"));
        Assert.Equal(3u, X86BootLoader.E820Type("ACPI Tables"));
        Assert.Equal(4u, X86BootLoader.E820Type("ACPI Non-volatile Storage"));
        Assert.Equal(2u, X86BootLoader.E820Type("Reserved"));
        Assert.Equal(2u, X86BootLoader.E820Type("something new"));
    }

    [Fact]
    public void Embedded_trampoline_is_trampoline_S_as_clang_assembles_it()
    {
        Prerequisites.Require(needsRoot: false, "clang", "objcopy");
        string work = Directory.CreateTempSubdirectory("tabula-trampoline-").FullName;
        try
        {
            string source = Path.Combine(AppContext.BaseDirectory, "trampoline.S");
            Run("clang", "-c", "-o", Path.Combine(work, "t.o"), source);
            Run("objcopy", "-O", "binary", "-j", ".text", Path.Combine(work, "t.o"), Path.Combine(work, "t.bin"));
            byte[] assembled = File.ReadAllBytes(Path.Combine(work, "t.bin"));
            byte[] embedded = X86BootLoader.TrampolineBytes;
            Assert.True(assembled.Length >= embedded.Length + 256, "the assembled page has no room for its stack");
            Assert.Equal(Convert.ToHexString(assembled.AsSpan(0, embedded.Length)), Convert.ToHexString(embedded));
            Assert.All(assembled[embedded.Length..], b => Assert.Equal(0, b));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    static void Run(string tool, params string[] arguments)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        string errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{tool} failed: {errors}");
    }
}

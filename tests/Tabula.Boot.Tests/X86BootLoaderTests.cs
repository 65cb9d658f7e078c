using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Tabula.Boot.Kexec;
using Tabula.Linux;
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
        Assert.True(zeroPage[0x230..0x268].SequenceEqual(kernel.AsSpan(0x230..0x268)), "alignment, xloadflags, init_size differ");
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

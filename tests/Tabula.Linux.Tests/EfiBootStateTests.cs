using System.Buffers.Binary;
using Tabula.Linux.Efi;

namespace Tabula.Linux.Tests;

/// <summary>
/// What stboot's kexec_load layout passes of UEFI to the next kernel, read from a tree laid out like the kernel's sysfs
/// (boot_params/data, firmware/efi/{fw_vendor,config_table,systab,runtime-map/N}) with the values an OVMF guest shows;
/// each missing or malformed piece is a typed error; and this machine's own /sys. OVMF itself is the test of the
/// hand-over: UefiTests boots the package kernel through it.
/// </summary>
public sealed class EfiBootStateTests : IDisposable
{
    readonly string root = Directory.CreateTempSubdirectory("tabula-efistate-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    static byte[] BootParams(uint signature = 0x34364c45, ulong systab = 0x7fbee018, uint version = 1, ulong rsdp = 0, byte secureBoot = 3)
    {
        byte[] data = new byte[4096];
        data[0] = 0x11;                                                                 // screen_info starts here
        data[0x3f] = 0x22;
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(0x70), rsdp);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(0x1c0), signature);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(0x1c4), (uint)systab);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(0x1c8), 48);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(0x1cc), version);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(0x1d8), (uint)(systab >> 32));
        data[0x1ec] = secureBoot;
        return data;
    }

    void Write(string path, string text) => Write(path, System.Text.Encoding.ASCII.GetBytes(text));

    void Write(string path, byte[] bytes)
    {
        string full = Path.Combine(root, path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllBytes(full, bytes);
    }

    void Region(int index, uint type, ulong physical, ulong pages, ulong attribute = 0x800000000000000f)
    {
        string dir = $"firmware/efi/runtime-map/{index}/";
        Write(dir + "type", $"0x{type:x}\n");
        Write(dir + "phys_addr", $"0x{physical:x}\n");
        Write(dir + "virt_addr", $"0x{0xfffffffeffe00000 - (ulong)index * 0x200000:x}\n");
        Write(dir + "num_pages", $"0x{pages:x}\n");
        Write(dir + "attribute", $"0x{attribute:x}\n");
    }

    void Ovmf(byte[]? bootParams = null)
    {
        Write("kernel/boot_params/data", bootParams ?? BootParams());
        Write("firmware/efi/fw_vendor", "0x7fbeeb98\n");
        Write("firmware/efi/config_table", "0x7fbee718\n");
        Write("firmware/efi/runtime", "0x7fbeeb18\n");
        Write("firmware/efi/systab", "ACPI20=0x7fb7e014\nACPI=0x7fb7e000\nSMBIOS3=0x7f98f000\nSMBIOS=0x7f990000\n");
        for (int i = 0; i < 12; i++)
            Region(i, i % 2 == 0 ? 5u : 6u, 0x7f800000 + (ulong)i * 0x20000, 0x10);
    }

    [Fact]
    public void An_ovmf_guest_s_state_reads_with_physical_tables_runtime_regions_in_order_and_the_rsdp_from_systab()
    {
        Ovmf();
        Region(12, 4, 0x7e000000, 2);   // boot-services data the kernel kept for the firmware (efi_mem_reserve)
        var state = EfiBootState.Read(root);
        Assert.Equal(0x7fbee018UL, state.SystemTable);
        Assert.Equal(1u, state.MemoryDescriptorVersion);
        Assert.Equal(0x7fbeeb98UL, state.FirmwareVendor);
        Assert.Equal(0x7fbee718UL, state.ConfigurationTables);
        Assert.Equal(0x7f990000UL, state.Smbios);
        Assert.Equal(0x7fb7e014UL, state.AcpiRsdp);                                   // boot_params had none: ACPI20
        Assert.Equal(3, state.SecureBoot);
        Assert.Equal(64, state.ScreenInfo.Length);
        Assert.Equal([0x11, 0x22], new[] { state.ScreenInfo.Span[0], state.ScreenInfo.Span[63] });
        Assert.Equal(13, state.RuntimeMap.Count);
        Assert.Equal(Enumerable.Range(0, 13).Select(i => i == 12 ? 0x7e000000UL : 0x7f800000 + (ulong)i * 0x20000), state.RuntimeMap.Select(d => d.PhysicalStart));
        Assert.Equal(0x7e001fffUL, state.RuntimeMap[12].End);
        Assert.Equal(0xfffffffeffe00000UL, state.RuntimeMap[0].VirtualStart);
        Assert.Equal(0x800000000000000fUL, state.RuntimeMap[0].Attribute);
    }

    [Fact]
    public void The_rsdp_in_boot_params_wins_over_systab_and_a_system_table_above_4_GiB_keeps_its_high_half()
    {
        Ovmf(BootParams(systab: 0x1_2345_6018, rsdp: 0xf5a10));
        var state = EfiBootState.Read(root);
        Assert.Equal(0xf5a10UL, state.AcpiRsdp);
        Assert.Equal(0x1_2345_6018UL, state.SystemTable);
    }

    [Theory]
    [InlineData("bios", "not EL64")]
    [InlineData("el32", "32-bit UEFI")]
    [InlineData("version2", "descriptor version 2")]
    [InlineData("short-params", "struct boot_params has 4096")]
    [InlineData("no-runtime-map", "CONFIG_EFI_RUNTIME_MAP")]
    [InlineData("empty-runtime-map", "is empty")]
    [InlineData("no-fw-vendor", "fw_vendor does not exist")]
    [InlineData("bad-hex", "is not a 0x hex number")]
    [InlineData("zero-pages", "0x0 pages")]
    [InlineData("unaligned", "pages at 0x7f800010")]
    [InlineData("huge-file", "longer than 64 bytes")]
    public void Missing_or_malformed_pieces_are_a_typed_error(string fault, string detail)
    {
        Ovmf(fault switch
        {
            "bios" => BootParams(signature: 0),
            "el32" => BootParams(signature: 0x32334c45),
            "version2" => BootParams(version: 2),
            "short-params" => BootParams()[..1024],
            _ => null,
        });
        switch (fault)
        {
            case "no-runtime-map": Directory.Delete(Path.Combine(root, "firmware/efi/runtime-map"), recursive: true); break;
            case "empty-runtime-map":
                Directory.Delete(Path.Combine(root, "firmware/efi/runtime-map"), recursive: true);
                Directory.CreateDirectory(Path.Combine(root, "firmware/efi/runtime-map"));
                break;
            case "no-fw-vendor": File.Delete(Path.Combine(root, "firmware/efi/fw_vendor")); break;
            case "bad-hex": Write("firmware/efi/config_table", "7fbee718\n"); break;
            case "zero-pages": Region(3, 5, 0x7f900000, 0); break;
            case "unaligned": Region(0, 5, 0x7f800010, 1); break;
            case "huge-file": Write("firmware/efi/runtime-map/1/phys_addr", "0x" + new string('0', 100)); break;
        }
        var e = Assert.Throws<KernelDataException>(() => EfiBootState.Read(root));
        Assert.Equal(KernelDataError.EfiBootStateInvalid, e.Reason);
        Assert.Contains(detail, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void More_runtime_regions_than_the_limit_are_refused()
    {
        Ovmf();
        for (int i = 12; i <= EfiBootState.MaxRuntimeMapEntries; i++)
            Directory.CreateDirectory(Path.Combine(root, $"firmware/efi/runtime-map/{i}"));
        var e = Assert.Throws<KernelDataException>(() => EfiBootState.Read(root));
        Assert.Contains($"more than {EfiBootState.MaxRuntimeMapEntries} entries", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void This_machine_s_own_sysfs_gives_its_state_or_says_why_not()
    {
        Assert.True(File.Exists("/sys/kernel/boot_params/data"), "x86 Linux always has /sys/kernel/boot_params/data");
        if (Directory.Exists("/sys/firmware/efi"))
        {
            if (Environment.UserName != "root")
                return;                        // runtime-map and fw_vendor are root-only
            var state = EfiBootState.Read();
            Assert.NotEqual(0UL, state.SystemTable);
            Assert.NotEmpty(state.RuntimeMap);
        }
        else
        {
            var e = Assert.Throws<KernelDataException>(() => EfiBootState.Read());
            Assert.Equal(KernelDataError.EfiBootStateInvalid, e.Reason);
            Assert.Contains("not EL64", e.Message, StringComparison.Ordinal);
        }
    }
}

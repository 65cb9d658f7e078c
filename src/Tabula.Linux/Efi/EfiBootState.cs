using System.Buffers.Binary;
using System.Globalization;

namespace Tabula.Linux.Efi;

/// <summary>One EFI_MEMORY_DESCRIPTOR (UEFI 2.10 §7.2, version 1): a region of <paramref name="Pages"/> 4 KiB pages at
/// <paramref name="PhysicalStart"/>, mapped at <paramref name="VirtualStart"/> by the running kernel's
/// SetVirtualAddressMap call.</summary>
public readonly record struct EfiMemoryDescriptor(uint Type, ulong PhysicalStart, ulong VirtualStart, ulong Pages, ulong Attribute)
{
    /// <summary>sizeof(EFI_MEMORY_DESCRIPTOR) without the padding some firmware adds (kexec-tools passes this size too).</summary>
    public const int Size = 40;

    /// <summary>The last byte of the region.</summary>
    public ulong End => PhysicalStart + Pages * 4096 - 1;
}

/// <summary>
/// What the next kernel needs, besides the e820 map, to keep using the UEFI firmware the running kernel was booted by,
/// when a loader other than the kernel itself lays out boot_params for kexec_load (the kernel's kexec_file_load does
/// the same from its own variables: arch/x86/kernel/kexec-bzimage64.c setup_efi_state). The firmware's boot services
/// are gone by now; what is left are the runtime services, already switched to virtual addresses by the running
/// kernel (SetVirtualAddressMap can be called once per boot). So the next kernel gets:
/// <list type="bullet">
/// <item>the EFI system table's physical address and the loader signature ("EL64"), from the running kernel's own
/// boot_params (<c>/sys/kernel/boot_params/data</c>, x86 ksysfs);</item>
/// <item>the runtime memory map with the virtual addresses in use (<c>/sys/firmware/efi/runtime-map/N/</c>,
/// CONFIG_EFI_RUNTIME_MAP): the next kernel maps the same regions at the same addresses instead of calling
/// SetVirtualAddressMap again (arch/x86/platform/efi/efi.c kexec_enter_virtual_mode);</item>
/// <item>the physical addresses of the firmware vendor string and the configuration table array
/// (<c>/sys/firmware/efi/fw_vendor</c>, <c>config_table</c>; the system table holds virtual ones now) and of SMBIOS
/// (<c>/sys/firmware/efi/systab</c>), which go into a SETUP_EFI setup_data record;</item>
/// <item>the ACPI RSDP (boot_params.acpi_rsdp_addr, else <c>systab</c>'s ACPI20=/ACPI=), the Secure Boot state the
/// firmware reported (boot_params.secure_boot) and the screen_info (an EFI GOP framebuffer).</item>
/// </list>
/// The files are kexec-tools' sources (kexec/arch/i386/x86-linux-setup.c setup_efi_info).
/// </summary>
public sealed record EfiBootState(
    ulong SystemTable,
    uint MemoryDescriptorVersion,
    ulong FirmwareVendor,
    ulong ConfigurationTables,
    ulong Smbios,
    ulong AcpiRsdp,
    byte SecureBoot,
    ReadOnlyMemory<byte> ScreenInfo,
    IReadOnlyList<EfiMemoryDescriptor> RuntimeMap)
{
    /// <summary>struct boot_params is one page (arch/x86/include/uapi/asm/bootparam.h).</summary>
    public const int BootParamsSize = 4096;

    /// <summary>struct screen_info at the start of boot_params (include/uapi/linux/screen_info.h).</summary>
    public const int ScreenInfoSize = 0x40;

    /// <summary>Runtime regions read at most. OVMF has about 20; arbitrary limit, may be increased.</summary>
    public const int MaxRuntimeMapEntries = 512;

    const int AcpiRsdpOffset = 0x70, EfiInfoOffset = 0x1c0, SecureBootOffset = 0x1ec;
    const uint Efi64Signature = 0x34364c45;   // "EL64"
    const uint Efi32Signature = 0x32334c45;   // "EL32"

    /// <summary>Reads the state under <paramref name="sysfs"/> (a folder laid out like /sys, for tests). Throws
    /// <see cref="KernelDataException"/> (<see cref="KernelDataError.EfiBootStateInvalid"/>) when the running kernel was
    /// not booted by 64-bit UEFI, runs without runtime services or without CONFIG_EFI_RUNTIME_MAP, or a file does not
    /// parse.</summary>
    public static EfiBootState Read(string sysfs = "/sys")
    {
        string paramsPath = Path.Combine(sysfs, "kernel/boot_params/data");
        byte[] bootParams = ReadCapped(paramsPath, BootParamsSize);
        if (bootParams.Length != BootParamsSize)
            Fail($"{paramsPath}: {bootParams.Length} bytes, struct boot_params has {BootParamsSize}");
        var info = bootParams.AsSpan(EfiInfoOffset, 32);
        uint signature = BinaryPrimitives.ReadUInt32LittleEndian(info);
        if (signature == Efi32Signature)
            Fail("booted by 32-bit UEFI (EL32): its runtime services cannot be handed to a 64-bit kernel");
        if (signature != Efi64Signature)
            Fail($"{paramsPath}: efi_loader_signature 0x{signature:x8} is not EL64 (not booted by UEFI)");
        ulong systemTable = BinaryPrimitives.ReadUInt32LittleEndian(info[4..]) | (ulong)BinaryPrimitives.ReadUInt32LittleEndian(info[24..]) << 32;
        uint descriptorVersion = BinaryPrimitives.ReadUInt32LittleEndian(info[12..]);
        if (systemTable == 0)
            Fail($"{paramsPath}: efi_systab is 0");
        if (descriptorVersion != 1)
            Fail($"{paramsPath}: EFI memory descriptor version {descriptorVersion} (1 expected)");

        string efi = Path.Combine(sysfs, "firmware/efi");
        ulong vendor = HexFile(Path.Combine(efi, "fw_vendor")), tables = HexFile(Path.Combine(efi, "config_table"));
        var systab = SystemTableEntries(Path.Combine(efi, "systab"));
        ulong rsdp = BinaryPrimitives.ReadUInt64LittleEndian(bootParams.AsSpan(AcpiRsdpOffset));
        if (rsdp == 0)
            rsdp = systab.GetValueOrDefault("ACPI20", systab.GetValueOrDefault("ACPI"));
        var runtimeMap = ReadRuntimeMap(Path.Combine(efi, "runtime-map"));
        return new EfiBootState(systemTable, descriptorVersion, vendor, tables, systab.GetValueOrDefault("SMBIOS"), rsdp,
            bootParams[SecureBootOffset], bootParams.AsMemory(0, ScreenInfoSize).ToArray(), runtimeMap);
    }

    static List<EfiMemoryDescriptor> ReadRuntimeMap(string root)
    {
        if (!Directory.Exists(root))
            Fail($"{root} does not exist (EFI runtime services disabled, or a kernel without CONFIG_EFI_RUNTIME_MAP)");
        var entries = new List<(int Index, string Path)>();
        foreach (string entry in Directory.EnumerateDirectories(root))
        {
            if (entries.Count == MaxRuntimeMapEntries)
                Fail($"{root} has more than {MaxRuntimeMapEntries} entries");
            if (!int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out int index))
                Fail($"{entry}: not a numbered runtime map entry");
            entries.Add((index, entry));
        }
        if (entries.Count == 0)
            Fail($"{root} is empty (no EFI runtime regions)");
        entries.Sort((a, b) => a.Index.CompareTo(b.Index));
        var map = new List<EfiMemoryDescriptor>(entries.Count);
        foreach (var (_, entry) in entries)
        {
            ulong type = HexFile(Path.Combine(entry, "type"));
            var descriptor = new EfiMemoryDescriptor((uint)type, HexFile(Path.Combine(entry, "phys_addr")), HexFile(Path.Combine(entry, "virt_addr")),
                HexFile(Path.Combine(entry, "num_pages")), HexFile(Path.Combine(entry, "attribute")));
            if (type > uint.MaxValue || descriptor.Pages == 0 || descriptor.Pages > (ulong.MaxValue - descriptor.PhysicalStart) / 4096 || descriptor.PhysicalStart % 4096 != 0)
                Fail($"{entry}: type 0x{type:x}, 0x{descriptor.Pages:x} pages at 0x{descriptor.PhysicalStart:x}");
            map.Add(descriptor);
        }
        return map;
    }

    /// <summary>"NAME=0xHEX" lines of /sys/firmware/efi/systab (drivers/firmware/efi/efi.c systab_show).</summary>
    static Dictionary<string, ulong> SystemTableEntries(string path)
    {
        var values = new Dictionary<string, ulong>(StringComparer.Ordinal);
        if (!File.Exists(path))
            return values;
        foreach (string line in System.Text.Encoding.ASCII.GetString(ReadCapped(path, 1024)).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = line.IndexOf('=');
            if (eq > 0 && TryHex(line[(eq + 1)..], out ulong value))
                values[line[..eq]] = value;
        }
        return values;
    }

    static ulong HexFile(string path)
    {
        if (!File.Exists(path))
            Fail($"{path} does not exist");
        string text = System.Text.Encoding.ASCII.GetString(ReadCapped(path, 64)).Trim();
        return TryHex(text, out ulong value) ? value : throw new KernelDataException(KernelDataError.EfiBootStateInvalid, $"{path}: \"{text}\" is not a 0x hex number");
    }

    static bool TryHex(string text, out ulong value)
    {
        value = 0;
        text = text.Trim();
        return text.StartsWith("0x", StringComparison.Ordinal) &&
               ulong.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>Reads at most <paramref name="max"/> bytes; a longer file is refused. sysfs reports sizes that are not the
    /// content's, so it reads to the end.</summary>
    static byte[] ReadCapped(string path, int max)
    {
        byte[] buffer = new byte[max + 1];
        int total = 0;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
            int n;
            while (total < buffer.Length && (n = stream.Read(buffer, total, buffer.Length - total)) > 0)
                total += n;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            Fail($"{path} does not exist");
        }
        if (total > max)
            Fail($"{path} is longer than {max} bytes");
        return buffer[..total];
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    static void Fail(string detail) => KernelDataException.Throw(KernelDataError.EfiBootStateInvalid, detail);
}

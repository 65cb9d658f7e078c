using System.Globalization;

namespace Tabula.Linux;

/// <summary>One range of the firmware's memory map: physical addresses [Start, End] inclusive, and the type as the kernel
/// names it ("System RAM", "Reserved", "ACPI Tables", "ACPI Non-volatile Storage", …).</summary>
public readonly record struct FirmwareMemoryRange(ulong Start, ulong End, string Type)
{
    /// <summary>True for "System RAM", the only type a loaded kernel may be placed in.</summary>
    public bool IsRam => Type == "System RAM";
}

/// <summary>
/// The memory map the firmware handed the running kernel, unchanged by it (/sys/firmware/memmap/N/{start,end,type},
/// CONFIG_FIRMWARE_MEMMAP): what kexec-tools passes on as the next kernel's e820 table.
/// </summary>
public static class FirmwareMemoryMap
{
    /// <summary>More ranges than the x86 boot protocol's e820 table holds are refused.</summary>
    public const int MaxEntries = 128;

    /// <summary>Reads the map, sorted by start address.</summary>
    public static IReadOnlyList<FirmwareMemoryRange> Read(string root = "/sys/firmware/memmap")
    {
        if (!Directory.Exists(root))
            throw new KernelDataException(KernelDataError.MemoryMapInvalid, $"{root} does not exist (kernel without CONFIG_FIRMWARE_MEMMAP)");
        string[] entries = Directory.GetDirectories(root);
        if (entries.Length is 0 or > MaxEntries)
            throw new KernelDataException(KernelDataError.MemoryMapInvalid, $"{root} has {entries.Length} entries (1 to {MaxEntries} expected)");
        var ranges = new List<FirmwareMemoryRange>(entries.Length);
        foreach (string entry in entries)
        {
            ulong start = Hex(entry, "start"), end = Hex(entry, "end");
            string type = Small(entry, "type").Trim();
            if (end < start || type.Length == 0)
                throw new KernelDataException(KernelDataError.MemoryMapInvalid, $"{entry}: start 0x{start:x}, end 0x{end:x}, type \"{type}\"");
            ranges.Add(new FirmwareMemoryRange(start, end, type));
        }
        ranges.Sort((a, b) => a.Start.CompareTo(b.Start));
        return ranges;
    }

    static ulong Hex(string entry, string name)
    {
        string text = Small(entry, name).Trim();
        return text.StartsWith("0x", StringComparison.Ordinal) && ulong.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong value)
            ? value
            : throw new KernelDataException(KernelDataError.MemoryMapInvalid, $"{entry}/{name}: \"{text}\" is not a 0x hex address");
    }

    static string Small(string entry, string name)
    {
        string path = Path.Combine(entry, name);
        using var file = File.OpenRead(path);
        byte[] buffer = new byte[128];
        int read = file.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        if (read == buffer.Length)
            throw new KernelDataException(KernelDataError.MemoryMapInvalid, $"{path} is longer than {buffer.Length - 1} bytes");
        return System.Text.Encoding.ASCII.GetString(buffer, 0, read);
    }
}

namespace Tabula.Linux.Tests;

/// <summary>/sys/firmware/memmap parsing: a tree laid out like the kernel's, bad entries with their typed error, and
/// this machine's own map.</summary>
public sealed class FirmwareMemoryMapTests
{
    static string Tree(params (string Start, string End, string Type)[] entries)
    {
        string root = Directory.CreateTempSubdirectory("tabula-memmap-").FullName;
        for (int i = 0; i < entries.Length; i++)
        {
            string entry = Path.Combine(root, i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Directory.CreateDirectory(entry);
            File.WriteAllText(Path.Combine(entry, "start"), entries[i].Start + "\n");
            File.WriteAllText(Path.Combine(entry, "end"), entries[i].End + "\n");
            File.WriteAllText(Path.Combine(entry, "type"), entries[i].Type + "\n");
        }
        return root;
    }

    [Fact]
    public void Entries_are_read_sorted_with_inclusive_ends_and_their_type_names()
    {
        string root = Tree(("0x100000", "0x3ffdffff", "System RAM"), ("0x0", "0x9fbff", "System RAM"), ("0x9fc00", "0xfffff", "Reserved"));
        try
        {
            var map = FirmwareMemoryMap.Read(root);
            Assert.Equal([0x0UL, 0x9fc00UL, 0x100000UL], map.Select(r => r.Start));
            Assert.Equal(0x3ffdffffUL, map[2].End);
            Assert.Equal([true, false, true], map.Select(r => r.IsRam));
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Theory]
    [InlineData("100000", "0x1fffff", "System RAM", "not a 0x hex address")]
    [InlineData("0x200000", "0x1fffff", "System RAM", "end 0x1fffff")]
    [InlineData("0x0", "0xfff", "", "type \"\"")]
    public void Bad_entries_are_a_typed_error(string start, string end, string type, string detail)
    {
        string root = Tree((start, end, type));
        try
        {
            var e = Assert.Throws<KernelDataException>(() => FirmwareMemoryMap.Read(root));
            Assert.Equal(KernelDataError.MemoryMapInvalid, e.Reason);
            Assert.Contains(detail, e.Message, StringComparison.Ordinal);
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public void A_missing_map_is_a_typed_error()
    {
        var e = Assert.Throws<KernelDataException>(() => FirmwareMemoryMap.Read("/nonexistent/memmap"));
        Assert.Equal(KernelDataError.MemoryMapInvalid, e.Reason);
    }

    [Fact]
    public void This_machine_has_ram_in_its_firmware_map()
    {
        if (!Directory.Exists("/sys/firmware/memmap"))
            return;   // kernels without CONFIG_FIRMWARE_MEMMAP: stboot then uses kexec_file_load
        Assert.Contains(FirmwareMemoryMap.Read(), r => r.IsRam && r.End > r.Start);
    }
}

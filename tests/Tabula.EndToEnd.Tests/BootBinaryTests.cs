using System.Buffers.Binary;
using Tabula.EndToEnd.Tests.Harness;
using Tabula.Testing;

namespace Tabula.EndToEnd.Tests;

/// <summary>The AOT smoke test with a size budget (Npgsql's NativeAOT test): tabula-boot is one static ELF file.</summary>
[Collection(BootCollection.Name)]
public sealed class BootBinaryTests(BootBinary boot, ITestOutputHelper output)
{
    /// <summary>Measured 10.9 MB for the proof of life, 12.9 MB with the boot state machine (HttpClient, static OpenSSL, X509Chain, BouncyCastle Ed25519).</summary>
    const long SizeBudgetBytes = 16 * 1024 * 1024;

    [ToolsFact("clang")]
    public void Published_boot_binary_is_a_static_executable_within_its_size_budget()
    {
        Prerequisites.Require(needsRoot: false, "clang");
        byte[] elf = File.ReadAllBytes(boot.Path);
        output.WriteLine($"tabula-boot: {elf.Length} bytes");
        Assert.True(elf.Length <= SizeBudgetBytes, $"tabula-boot is {elf.Length} bytes, budget {SizeBudgetBytes}");

        Assert.Equal([0x7F, (byte)'E', (byte)'L', (byte)'F', 2 /* 64-bit */], elf[..5]);
        Assert.Equal(2, BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(16)));   // ET_EXEC: not PIE
        ulong programHeaders = BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan(32));
        int entrySize = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(54));
        int count = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(56));
        var types = Enumerable.Range(0, count)
            .Select(i => BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan((int)programHeaders + i * entrySize)))
            .ToList();
        Assert.DoesNotContain(3u, types);  // PT_INTERP: no dynamic loader
        Assert.DoesNotContain(2u, types);  // PT_DYNAMIC: no shared libraries
    }
}

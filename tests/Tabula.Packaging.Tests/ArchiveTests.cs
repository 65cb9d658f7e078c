using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;

namespace Tabula.Packaging.Tests;

public sealed class ArchiveTests
{
    private static byte[] Write(byte[] kernel, byte[] initramfs, string cmdline = "console=ttyS0")
    {
        using var output = new MemoryStream();
        OsPackageArchiveWriter.Write(output, new OsPackageArchiveWriter.Inputs(
            new MemoryStream(kernel), "vmlinuz", new MemoryStream(initramfs), "initrd.img", "label", cmdline));
        return output.ToArray();
    }

    [Fact]
    public void Same_inputs_give_the_same_archive_bytes()
    {
        byte[] kernel = RandomNumberGenerator.GetBytes(300_000), initramfs = RandomNumberGenerator.GetBytes(70_000);
        Assert.Equal(SHA256.HashData(Write(kernel, initramfs)), SHA256.HashData(Write(kernel, initramfs)));
        Assert.NotEqual(SHA256.HashData(Write(kernel, initramfs)), SHA256.HashData(Write(kernel, initramfs, "quiet")));
    }

    [Fact]
    public void Written_archive_reads_back_with_upstream_layout()
    {
        byte[] kernel = RandomNumberGenerator.GetBytes(100_000), initramfs = Encoding.ASCII.GetBytes(new string('x', 50_000));
        using var archive = OsPackageArchive.Open(new MemoryStream(Write(kernel, initramfs)));
        Assert.Equal(["boot/", "boot/vmlinuz", "boot/initrd.img", "manifest.json"], archive.Entries.Select(e => e.Name));
        Assert.Equal(new Manifest("label", "boot/vmlinuz", "boot/initrd.img", "console=ttyS0"), archive.Manifest);
        var extracted = new MemoryStream();
        archive.ExtractKernel(extracted);
        Assert.Equal(kernel, extracted.ToArray());
        extracted.SetLength(0);
        archive.ExtractInitramfs(extracted);
        Assert.Equal(initramfs, extracted.ToArray());
    }

    [Fact]
    public void Written_archive_is_read_by_the_bcl_zip_reader_too()
    {
        using var zip = new ZipArchive(new MemoryStream(Write([1, 2, 3], [4, 5])), ZipArchiveMode.Read);
        Assert.Equal(4, zip.Entries.Count);
        Assert.All(zip.Entries, e => Assert.Equal(new DateTime(1980, 1, 1), e.LastWriteTime.DateTime));
    }

    [Fact]
    public void Upstream_2021_archive_opens_and_ignores_unknown_manifest_keys()
    {
        byte[] bytes = Vectors.Read("st-upstream/stboot-legacy-2021/testOSManifest.zip");
        Assert.Equal("b5d185d6e5b1e27c75bbc57b5ca5f03ec70331ef516f8ec224e4429cba2498a7", Hex.Encode(SHA256.HashData(bytes)));
        using var archive = OsPackageArchive.Open(new MemoryStream(bytes));
        Assert.Equal("", archive.Manifest.Cmdline);
        Assert.Equal(6, archive.Entries.Count);
        Assert.EndsWith("dummy_kernel.bin", archive.Manifest.KernelPath);
    }

    /// <summary>A zip made with the BCL writer, which allows the hostile layouts our reader must refuse.</summary>
    private static MemoryStream Hostile(params (string Name, byte[] Data)[] entries)
    {
        var stream = new MemoryStream();
        using (var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, data) in entries)
            {
                using var s = zip.CreateEntry(name, CompressionLevel.SmallestSize).Open();
                s.Write(data);
            }
        stream.Position = 0;
        return stream;
    }

    private static byte[] ManifestJson(string kernel = "boot/k", string initramfs = "boot/i") =>
        new Manifest("x", kernel, initramfs, "").ToJson();

    [Theory]
    [InlineData("../evil")]
    [InlineData("boot/../../evil")]
    [InlineData("/etc/passwd")]
    [InlineData("boot\\evil")]
    [InlineData("boot//k")]
    [InlineData("./manifest.json")]
    public void Entry_names_that_escape_the_archive_are_refused(string name)
    {
        var e = Assert.Throws<PackageFormatException>(() => OsPackageArchive.Open(Hostile(("boot/k", [1]), ("boot/i", [1]), (name, [1]), ("manifest.json", ManifestJson()))));
        Assert.Equal(FormatError.UnsafeEntryName, e.Error);
    }

    [Fact]
    public void Duplicate_entries_are_refused()
    {
        var e = Assert.Throws<PackageFormatException>(() => OsPackageArchive.Open(Hostile(("boot/k", [1]), ("boot/k", [2]), ("boot/i", [1]), ("manifest.json", ManifestJson()))));
        Assert.Equal(FormatError.DuplicateEntry, e.Error);
    }

    [Fact]
    public void Highly_compressible_entry_is_refused_as_a_zip_bomb()
    {
        var e = Assert.Throws<PackageFormatException>(() => OsPackageArchive.Open(Hostile(("boot/k", new byte[20 << 20]), ("boot/i", [1]), ("manifest.json", ManifestJson()))));
        Assert.Equal(FormatError.ZipBomb, e.Error);
    }

    [Fact]
    public void Missing_manifest_and_missing_kernel_are_refused()
    {
        Assert.Equal(FormatError.MissingEntry, Assert.Throws<PackageFormatException>(() => OsPackageArchive.Open(Hostile(("boot/k", [1])))).Error);
        Assert.Equal(FormatError.MissingEntry, Assert.Throws<PackageFormatException>(() => OsPackageArchive.Open(Hostile(("boot/i", [1]), ("manifest.json", ManifestJson())))).Error);
        Assert.Equal(FormatError.MissingEntry, Assert.Throws<PackageFormatException>(() => OsPackageArchive.Open(Hostile(("boot/k", []), ("boot/i", [1]), ("manifest.json", ManifestJson())))).Error);
    }

    [Fact]
    public void Truncated_archives_are_refused_at_every_length()
    {
        byte[] whole = Write(RandomNumberGenerator.GetBytes(5000), [1, 2, 3]);
        for (int length = 0; length < whole.Length; length += 97)
        {
            var e = Assert.Throws<PackageFormatException>(() => OsPackageArchive.Open(new MemoryStream(whole[..length])));
            Assert.True(e.Error is FormatError.InvalidArchive or FormatError.MissingEntry, $"length {length}: {e.Error} {e.Message}");
        }
    }

    [Fact]
    public void Corrupted_entry_data_fails_on_extraction_not_silently()
    {
        byte[] bytes = Write(RandomNumberGenerator.GetBytes(50_000), [1, 2, 3]);
        bytes[2000] ^= 0xFF; // inside the compressed kernel
        using var archive = OsPackageArchive.Open(new MemoryStream(bytes));
        Assert.Throws<PackageFormatException>(() => archive.ExtractKernel(Stream.Null));
    }
}

public sealed class DescriptorTests
{
    [Fact]
    public void Unsigned_descriptor_is_written_as_stmgr_writes_it()
    {
        Assert.Equal("{\n  \"version\": 1,\n  \"os_pkg_url\": \"https://example.org/os.zip\",\n  \"certificates\": null,\n  \"signatures\": null\n}",
            Encoding.UTF8.GetString(Descriptor.Unsigned("https://example.org/os.zip").ToJson()));
    }

    [Fact]
    public void Descriptor_round_trips()
    {
        var d = Descriptor.Unsigned("os.zip").AddSignature("PEM", new byte[64]).AddSignature("PEM2", new byte[64]);
        var back = Descriptor.Parse(d.ToJson());
        Assert.Equal(d.Certificates, back.Certificates);
        Assert.Equal(d.Signatures, back.Signatures);
        Assert.Equal(d.OsPackageUrl, back.OsPackageUrl);
    }

    [Theory]
    [InlineData("""{"version":2,"os_pkg_url":"x","certificates":null,"signatures":null}""", FormatError.UnsupportedVersion)]
    [InlineData("""{"os_pkg_url":"x"}""", FormatError.InvalidField)]
    [InlineData("""{"version":"1"}""", FormatError.InvalidField)]
    [InlineData("""{"version":1,"certificates":["a"],"signatures":[]}""", FormatError.MismatchedSignatures)]
    [InlineData("""{"version":1,"certificates":["a"],"signatures":null}""", FormatError.MismatchedSignatures)]
    [InlineData("""{"version":1,"certificates":[1],"signatures":["a"]}""", FormatError.InvalidField)]
    [InlineData("""{"version":1,"certificates":"a","signatures":"b"}""", FormatError.InvalidField)]
    [InlineData("""{"version":1""", FormatError.InvalidJson)]
    [InlineData("""{"version":1} trailing""", FormatError.InvalidJson)]
    [InlineData("""[]""", FormatError.InvalidJson)]
    [InlineData("", FormatError.InvalidJson)]
    public void Malformed_descriptors_throw_typed_errors(string json, FormatError expected)
    {
        Assert.Equal(expected, Assert.Throws<PackageFormatException>(() => Descriptor.Parse(Encoding.UTF8.GetBytes(json))).Error);
    }

    [Fact]
    public void Oversized_descriptor_is_refused_before_parsing()
    {
        var big = new byte[Limits.MaxDescriptorBytes + 1];
        Assert.Equal(FormatError.TooLarge, Assert.Throws<PackageFormatException>(() => Descriptor.Parse(big)).Error);
    }

    [Fact]
    public void Deeply_nested_json_is_refused()
    {
        string json = "{\"version\":1,\"x\":" + new string('[', 100) + new string(']', 100) + "}";
        Assert.Equal(FormatError.InvalidJson, Assert.Throws<PackageFormatException>(() => Descriptor.Parse(Encoding.UTF8.GetBytes(json))).Error);
    }

    [Fact]
    public void Too_many_signatures_are_refused()
    {
        string entries = string.Join(',', Enumerable.Repeat("\"a\"", Limits.MaxSignatures + 1));
        string json = $$"""{"version":1,"certificates":[{{entries}}],"signatures":[{{entries}}]}""";
        Assert.Equal(FormatError.TooLarge, Assert.Throws<PackageFormatException>(() => Descriptor.Parse(Encoding.UTF8.GetBytes(json))).Error);
    }
}

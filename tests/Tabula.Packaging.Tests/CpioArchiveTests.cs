using System.Diagnostics;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Tabula.Packaging.Cpio;
using Tabula.Testing;

namespace Tabula.Packaging.Tests;

public sealed class CpioArchiveTests
{
    static CpioArchive Sample(bool reversed = false)
    {
        var archive = new CpioArchive();
        var steps = new List<Action<CpioArchive>>
        {
            a => a.AddFile("/init", Encoding.UTF8.GetBytes("#!/bin/sh\necho hi\n"), CpioArchive.ExecutableMode),
            a => a.AddFile("etc/trust_policy/trust_policy.json", "{\"ospkg_signature_threshold\":2}"u8.ToArray()),
            a => a.AddFile("etc/host_configuration.json", new byte[1021]),
            a => a.AddSymbolicLink("bin/sh", "/init"),
            a => a.AddCharacterDevice("dev/console", 5, 1),
            a => a.AddDirectory("run", UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute),
        };
        if (reversed)
            steps.Reverse();
        foreach (var step in steps)
            step(archive);
        return archive;
    }

    [Fact]
    public void Same_entries_in_any_order_give_the_same_bytes()
    {
        byte[] first = Sample().ToArray();
        Assert.Equal(first, Sample().ToArray());
        Assert.Equal(first, Sample(reversed: true).ToArray());
    }

    [Fact]
    public void Gzip_output_is_the_same_every_time_and_has_no_timestamp()
    {
        byte[] a = Gzip(Sample()), b = Gzip(Sample(reversed: true));
        Assert.Equal(a, b);
        Assert.Equal(new byte[] { 0x1f, 0x8b, 8 }, a[..3]);
        Assert.Equal(new byte[4], a[4..8]);  // MTIME
        Assert.Equal(0, a[3]);              // FLG: no name, no comment
    }

    [Fact]
    public void Header_fields_are_fixed_and_the_archive_ends_with_a_trailer()
    {
        byte[] bytes = new CpioArchive().AddFile("init", "x"u8.ToArray(), CpioArchive.ExecutableMode).ToArray();
        string text = Encoding.ASCII.GetString(bytes);
        // 070701 ino=1 mode=0100755 uid=0 gid=0 nlink=1 mtime=0 size=1 ... namesize=5 check=0
        Assert.StartsWith("070701" + "00000001" + "000081ED" + "00000000" + "00000000" + "00000001" + "00000000" + "00000001", text);
        Assert.Contains("TRAILER!!!", text);
        Assert.Equal(0, bytes.Length % 4);
    }

    [Fact]
    public void Parent_directories_are_implied_and_conflicts_refused()
    {
        var archive = new CpioArchive().AddFile("a/b/c", new byte[1]);
        Assert.Equal(["a", "a/b", "a/b/c"], ReadNames(archive.ToArray()));
        Assert.Equal(FormatError.DuplicateEntry,
            Assert.Throws<PackageFormatException>(() => new CpioArchive().AddFile("a", new byte[1]).AddFile("a/b", new byte[1]).ToArray()).Error);
        Assert.Equal(FormatError.DuplicateEntry,
            Assert.Throws<PackageFormatException>(() => new CpioArchive().AddFile("a", new byte[1]).AddFile("/a", new byte[1])).Error);
    }

    [Theory, InlineData(""), InlineData("/"), InlineData("a/../b"), InlineData("a//b"), InlineData("./")]
    public void Invalid_paths_are_refused(string path) =>
        Assert.Equal(FormatError.UnsafeEntryName, Assert.Throws<PackageFormatException>(() => new CpioArchive().AddFile(path, new byte[1])).Error);

    [Fact]
    public void A_path_over_PATH_MAX_is_refused_as_too_large() =>
        Assert.Equal(FormatError.TooLarge,
            Assert.Throws<PackageFormatException>(() => new CpioArchive().AddFile(new string('a', Limits.MaxCpioPathBytes + 1), new byte[1])).Error);

    [PrivilegedFact("cpio")]
    public void Gnu_cpio_lists_and_extracts_what_was_written()
    {
        Prerequisites.Require(needsRoot: true, "cpio");
        string dir = Directory.CreateTempSubdirectory("tabula-cpio").FullName;
        try
        {
            string archivePath = Path.Combine(dir, "a.cpio");
            byte[] big = RandomNumberGenerator.GetBytes(70_001);
            string bigSource = Path.Combine(dir, "big.bin");
            File.WriteAllBytes(bigSource, big);
            CpioArchive archive = Sample().AddFileFrom("boot/vmlinuz", bigSource);
            File.WriteAllBytes(archivePath, archive.ToArray());

            string listing = Shell($"cpio -itv --quiet < {archivePath}", dir);
            string[] lines = listing.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(ReadNames(archive.ToArray()), lines.Select(ParseListedName).ToArray());
            Assert.All(lines, l => Assert.Contains(" root ", l));
            Assert.Contains(lines, l => l.StartsWith("crw-------", StringComparison.Ordinal) && l.Contains("dev/console"));
            Assert.Contains(lines, l => l.StartsWith("lrwxrwxrwx", StringComparison.Ordinal) && l.EndsWith("bin/sh -> /init", StringComparison.Ordinal));

            string root = Path.Combine(dir, "root");
            Directory.CreateDirectory(root);
            Shell($"cpio -idm --quiet --no-absolute-filenames < {archivePath}", root);
            Assert.Equal(big, File.ReadAllBytes(Path.Combine(root, "boot/vmlinuz")));
            Assert.Equal("#!/bin/sh\necho hi\n", File.ReadAllText(Path.Combine(root, "init")));
            Assert.Equal(CpioArchive.ExecutableMode, File.GetUnixFileMode(Path.Combine(root, "init")));
            Assert.Equal(new byte[1021], File.ReadAllBytes(Path.Combine(root, "etc/host_configuration.json")));
            Assert.Equal("/init", new FileInfo(Path.Combine(root, "bin/sh")).LinkTarget);
            Assert.Equal(DateTime.UnixEpoch, File.GetLastWriteTimeUtc(Path.Combine(root, "init")));

            // The gzip stream decompresses with the independent gzip tool to the same archive.
            string gzPath = Path.Combine(dir, "a.cpio.gz");
            using (var file = File.Create(gzPath))
                archive.WriteGzipTo(file);
            Assert.Equal(archive.ToArray(), ShellBytes($"gzip -dc < {gzPath}", dir));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    static string ParseListedName(string line)
    {
        // "-rw-r--r--   1 root     root         1021 Jan  1  1970 etc/host_configuration.json"
        string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        int arrow = Array.IndexOf(parts, "->");
        return arrow > 0 ? parts[arrow - 1] : parts[^1];
    }

    internal static string[] ReadNames(byte[] archive) => [.. NewcReader.Read(archive).Select(e => e.Name)];

    static byte[] Gzip(CpioArchive archive)
    {
        using var memory = new MemoryStream();
        archive.WriteGzipTo(memory, CompressionLevel.Optimal);
        return memory.ToArray();
    }

    static string Shell(string command, string directory) => Encoding.UTF8.GetString(ShellBytes(command, directory));

    static byte[] ShellBytes(string command, string directory)
    {
        var start = new ProcessStartInfo("/bin/sh") { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        using var memory = new MemoryStream();
        process.StandardOutput.BaseStream.CopyTo(memory);
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{command}: {stderr.Result}");
        return memory.ToArray();
    }
}

namespace Tabula.Cli.Tests;

/// <summary>`tabula ospkg create`: a deterministic archive that Debian's unzip accepts.</summary>
public sealed class OsPkgCreateTests : IDisposable
{
    private readonly Scratch scratch = new();

    public void Dispose() => scratch.Dispose();

    [Fact]
    public void Create_twice_with_the_same_inputs_gives_byte_identical_archives()
    {
        string kernel = scratch.RandomFile("vmlinuz", 300_000), initramfs = scratch.RandomFile("initramfs.cpio", 500_000);
        Tabula.Ok("ospkg", "create", "--kernel", kernel, "--initramfs", initramfs, "--label", "same", "--out", scratch["first"]);
        // Another time stamp on the inputs must not leak into the archive.
        File.SetLastWriteTimeUtc(kernel, new DateTime(2001, 2, 3, 4, 5, 6, DateTimeKind.Utc));
        File.SetLastWriteTimeUtc(initramfs, DateTime.UtcNow.AddDays(-3));
        Tabula.Ok("ospkg", "create", "--kernel", kernel, "--initramfs", initramfs, "--label", "same", "--out", scratch["second"]);
        Assert.Equal(File.ReadAllBytes(scratch["first.zip"]), File.ReadAllBytes(scratch["second.zip"]));
    }

    [Fact]
    public void Create_with_another_label_gives_another_archive()
    {
        string kernel = scratch.RandomFile("vmlinuz", 1000), initramfs = scratch.RandomFile("initramfs.cpio", 1000);
        Tabula.Ok("ospkg", "create", "--kernel", kernel, "--initramfs", initramfs, "--label", "one", "--out", scratch["first"]);
        Tabula.Ok("ospkg", "create", "--kernel", kernel, "--initramfs", initramfs, "--label", "two", "--out", scratch["second"]);
        Assert.NotEqual(File.ReadAllBytes(scratch["first.zip"]), File.ReadAllBytes(scratch["second.zip"]));
    }

    [Fact]
    public void Unzip_tests_the_archive_without_errors_and_lists_the_stmgr_layout()
    {
        string kernel = scratch.RandomFile("vmlinuz", 200_000);
        File.WriteAllText(scratch["initramfs.cpio"], string.Concat(Enumerable.Repeat("compressible initramfs text\n", 10_000)));
        Tabula.Ok("ospkg", "create", "--kernel", kernel, "--initramfs", scratch["initramfs.cpio"], "--out", scratch["os"]);

        var tested = ProcessRunner.Run("unzip", ["-t", "os.zip"], scratch.Dir);
        Assert.True(tested.ExitCode == 0, tested.ToString());
        Assert.Contains("No errors detected", tested.Stdout);

        var listed = ProcessRunner.Run("unzip", ["-Z1", "os.zip"], scratch.Dir);
        Assert.True(listed.ExitCode == 0, listed.ToString());
        Assert.Equal(["boot/", "boot/vmlinuz", "boot/initramfs.cpio", "manifest.json"], listed.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        var extracted = ProcessRunner.Run("unzip", ["-q", "os.zip", "-d", "out"], scratch.Dir);
        Assert.True(extracted.ExitCode == 0, extracted.ToString());
        Assert.Equal(File.ReadAllBytes(kernel), File.ReadAllBytes(scratch["out/boot/vmlinuz"]));
        Assert.Equal(File.ReadAllBytes(scratch["initramfs.cpio"]), File.ReadAllBytes(scratch["out/boot/initramfs.cpio"]));
    }

    [Fact]
    public void Create_writes_an_unsigned_descriptor()
    {
        string kernel = scratch.RandomFile("vmlinuz", 1000), initramfs = scratch.RandomFile("initramfs.cpio", 1000);
        Tabula.Ok("ospkg", "create", "--kernel", kernel, "--initramfs", initramfs, "--out", scratch["os"]);
        var descriptor = new Package(scratch["os.zip"], scratch["os.json"]).ReadDescriptor();
        Assert.Equal(1, descriptor["version"]!.GetValue<int>());
        Assert.Equal("os.zip", descriptor["os_pkg_url"]!.GetValue<string>());
        Assert.Null(descriptor["certificates"]);
        Assert.Null(descriptor["signatures"]);
    }
}

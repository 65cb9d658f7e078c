namespace Tabula.Cli.Tests;

/// <summary>`tabula image stboot` through the real binary: same inputs, same bytes; sizes printed; bad input is exit 2.</summary>
public sealed class ImageStbootTests : IDisposable
{
    readonly Scratch scratch = new();

    public void Dispose() => scratch.Dispose();

    string[] Arguments(string output)
    {
        string init = scratch.RandomFile("tabula-boot", 8192);
        Tabula.Ok("keygen", "root", "--out", scratch["root"]);
        Directory.CreateDirectory(scratch["trust"]);
        File.Copy(scratch["root.pem"], Path.Combine(scratch["trust"], "ospkg_signing_root.pem"), overwrite: true);
        File.WriteAllText(Path.Combine(scratch["trust"], "trust_policy.json"), """{"ospkg_signature_threshold": 1, "ospkg_fetch_method": "network"}""");
        File.WriteAllText(scratch["host.json"], """{"network_mode": "dhcp", "ospkg_pointer": "https://10.0.0.1/os.json"}""");
        string release = Path.Combine(scratch["modules"], "6.1.0-test", "kernel");
        Directory.CreateDirectory(release);
        File.WriteAllBytes(Path.Combine(release, "a.ko"), [0x7F, (byte)'E', (byte)'L', (byte)'F', 1]);
        File.WriteAllBytes(Path.Combine(release, "b.ko"), [0x7F, (byte)'E', (byte)'L', (byte)'F', 2]);
        File.WriteAllText(Path.Combine(scratch["modules"], "6.1.0-test", "modules.dep"), "kernel/b.ko: kernel/a.ko\nkernel/a.ko:\n");
        return ["image", "stboot", "--trust-policy", scratch["trust"], "--host-config", scratch["host.json"], "--kernel-release", "6.1.0-test",
            "--modules-root", scratch["modules"], "--modules", "b", "--init", init, "--out", output];
    }

    [Fact]
    public void Same_inputs_give_the_same_image_and_the_sizes_are_printed()
    {
        var args = Arguments(scratch["one.cpio.gz"]);
        var first = Tabula.Ok(args);
        Tabula.Ok([.. args[..^1], scratch["two.cpio.gz"]]);
        Assert.Equal(File.ReadAllBytes(scratch["one.cpio.gz"]), File.ReadAllBytes(scratch["two.cpio.gz"]));
        Assert.Contains($"{new FileInfo(scratch["one.cpio.gz"]).Length} bytes (gzip), /init 8192 bytes", first.Stdout);
        Assert.Contains("2 modules", first.Stdout);
    }

    [Fact]
    public void Compression_none_writes_the_plain_newc_archive_that_the_gzip_image_holds()
    {
        var args = Arguments(scratch["plain.cpio"]);
        var plain = Tabula.Ok([.. args, "--compression", "none"]);
        Tabula.Ok([.. args[..^1], scratch["packed.cpio.gz"]]);
        byte[] bytes = File.ReadAllBytes(scratch["plain.cpio"]);
        Assert.Equal("070701"u8.ToArray(), bytes[..6]);
        using var gzip = new System.IO.Compression.GZipStream(File.OpenRead(scratch["packed.cpio.gz"]), System.IO.Compression.CompressionMode.Decompress);
        using var unpacked = new MemoryStream();
        gzip.CopyTo(unpacked);
        Assert.Equal(bytes, unpacked.ToArray());
        Assert.Contains($"{bytes.Length} bytes (uncompressed)", plain.Stdout);
        Assert.Equal(2, Tabula.Run([.. args, "--compression", "xz"]).ExitCode);
    }

    [Fact]
    public void Invalid_host_configuration_is_exit_2_with_the_reason_and_no_output_file()
    {
        var args = Arguments(scratch["bad.cpio.gz"]);
        File.WriteAllText(scratch["host.json"], """{"network_mode": "static", "ospkg_pointer": "https://10.0.0.1/os.json"}""");
        var output = Tabula.Run(args);
        Assert.Equal(2, output.ExitCode);
        Assert.Contains("host_ip", output.Stderr);
        Assert.False(File.Exists(scratch["bad.cpio.gz"]));
    }
}

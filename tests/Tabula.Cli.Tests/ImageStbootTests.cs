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

    /// <summary>--format uki and iso through the real CLI, with Debian's systemd stub and guest kernel: the UKI is
    /// reproducible and its sections read back; a lone --sign-key and a kernel that is no bzImage are exit 2 with no file.</summary>
    [GuestKernelFact(false, "xorriso", "mformat", "/usr/lib/systemd/boot/efi/linuxx64.efi.stub")]
    public void Format_uki_and_iso_are_reproducible_and_bad_uefi_input_is_exit_2()
    {
        string kernel = GuestKernel.Require().KernelPath;
        var args = Arguments(scratch["one.efi"]);
        var first = Tabula.Ok([.. args, "--format", "uki", "--kernel", kernel, "--cmdline", "console=ttyS0 -- --rounds=3"]);
        Tabula.Ok([.. args[..^1], scratch["two.efi"], "--format", "uki", "--kernel", kernel, "--cmdline", "console=ttyS0 -- --rounds=3"]);
        Assert.Equal(File.ReadAllBytes(scratch["one.efi"]), File.ReadAllBytes(scratch["two.efi"]));
        Assert.Contains("(uki), UKI", first.Stdout);
        var sections = global::Tabula.Images.Uefi.UkiImage.Read(File.ReadAllBytes(scratch["one.efi"]));
        Assert.Equal("console=ttyS0 -- --rounds=3", sections.CommandLine);

        var iso = Tabula.Ok([.. args[..^1], scratch["stboot.iso"], "--format", "iso", "--kernel", kernel]);
        Assert.Contains("(iso), UKI", iso.Stdout);

        var lone = Tabula.Run([.. args[..^1], scratch["x.efi"], "--format", "uki", "--kernel", kernel, "--sign-key", scratch["root.key"]]);
        Assert.Equal(2, lone.ExitCode);
        Assert.Contains("--sign-key and --sign-cert go together", lone.Stderr);
        var notKernel = Tabula.Run([.. args[..^1], scratch["x.efi"], "--format", "uki", "--kernel", scratch["host.json"]]);
        Assert.Equal(2, notKernel.ExitCode);
        Assert.Contains("UkiSectionInvalid: kernel:", notKernel.Stderr);
        Assert.False(File.Exists(scratch["x.efi"]));
    }

    /// <summary>`tabula hostconfig efivar`: a valid host configuration lands in a copy of OVMF's store as STHostConfig;
    /// an invalid one is exit 2 and writes nothing.</summary>
    [ToolsFact("/usr/share/OVMF/OVMF_VARS_4M.fd")]
    public void Hostconfig_efivar_writes_sthostconfig_into_a_copy_of_the_ovmf_store()
    {
        File.WriteAllText(scratch["host.json"], """{"network_mode": "dhcp", "ospkg_pointer": "https://10.0.0.1/os.json"}""");
        var output = Tabula.Ok("hostconfig", "efivar", scratch["host.json"], "--out", scratch["VARS.fd"]);
        Assert.Contains("STHostConfig-f401f2c1-b005-4be0-8cee-f2e5945bcbe7", output.Stdout);
        var store = global::Tabula.Images.Uefi.OvmfVariableStore.Parse(File.ReadAllBytes(scratch["VARS.fd"]));
        Assert.Equal(File.ReadAllBytes(scratch["host.json"]), store.Find("STHostConfig", new Guid("f401f2c1-b005-4be0-8cee-f2e5945bcbe7"))!.Data);

        File.WriteAllText(scratch["bad.json"], """{"network_mode": "static", """);
        var bad = Tabula.Run(["hostconfig", "efivar", scratch["bad.json"], "--out", scratch["bad.fd"]]);
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("invalid", bad.Stderr);
        Assert.False(File.Exists(scratch["bad.fd"]));
    }
}

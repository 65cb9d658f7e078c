using System.Text.Json.Nodes;
using Tabula.Testing;

namespace Tabula.Cli.Tests;

/// <summary>
/// `tabula image relay` through the real binary: same inputs, same package; sizes and the goal printed; bad fleet URL and
/// bad CA are exit 2 with no output; the package is signed and verified by `ospkg sign`/`verify`.
/// </summary>
public sealed class ImageRelayTests : IDisposable
{
    readonly Scratch scratch = new();

    public void Dispose() => scratch.Dispose();

    /// <summary>A fake agent and kernel, a CA from `fleet tls init`, a module tree; the arguments for NAME.</summary>
    string[] Arguments(string name, int kernelBytes = 16384)
    {
        string agent = File.Exists(scratch["tabula-relay"]) ? scratch["tabula-relay"] : scratch.RandomFile("tabula-relay", 8192);
        string kernel = scratch.RandomFile("vmlinuz-6.1.0-test", kernelBytes);
        if (!File.Exists(scratch["tls/ca.pem"]))
            Tabula.Ok("fleet", "tls", "init", "--out", scratch["tls"]);
        string release = Path.Combine(scratch["modules"], "6.1.0-test");
        Directory.CreateDirectory(Path.Combine(release, "kernel"));
        foreach (string module in new[] { "udp_tunnel", "wireguard", "virtio_net" })
            File.WriteAllBytes(Path.Combine(release, "kernel", module + ".ko"), [0x7F, (byte)'E', (byte)'L', (byte)'F', (byte)module[0]]);
        File.WriteAllText(Path.Combine(release, "modules.dep"), "kernel/wireguard.ko: kernel/udp_tunnel.ko\nkernel/udp_tunnel.ko:\nkernel/virtio_net.ko:\n");
        return ["image", "relay", "--kernel-release", "6.1.0-test", "--kernel", kernel, "--modules-root", scratch["modules"],
            "--modules", "wireguard,virtio_net", "--fleet-url", "https://192.0.2.10:8443", "--fleet-ca", scratch["tls/ca.pem"],
            "--agent", agent, "--out", scratch[name]];
    }

    static string[] With(string[] args, string option, string value)
    {
        string[] copy = [.. args];
        copy[Array.IndexOf(copy, option) + 1] = value;
        return copy;
    }

    [Fact]
    public void Same_inputs_give_the_same_package_and_the_sizes_and_goal_are_printed()
    {
        var args = Arguments("one");
        var first = Tabula.Ok(args);
        Tabula.Ok(With(args, "--out", scratch["two"]));
        Assert.Equal(File.ReadAllBytes(scratch["one.zip"]), File.ReadAllBytes(scratch["two.zip"]));
        long zip = new FileInfo(scratch["one.zip"]).Length;
        Assert.Contains($"created {scratch["one.zip"]} ({zip} bytes, sha256 ", first.Stdout);
        Assert.Contains($"created {scratch["one.json"]} (unsigned; os_pkg_url one.zip)", first.Stdout);
        Assert.Contains($"size: package {zip} bytes = 0.0 MB (goal ≤ 50.0 MB: met)", first.Stdout);
        Assert.Contains("kernel 16384 bytes, initramfs ", first.Stdout);
        Assert.Contains($"/init 8192 bytes ({scratch["tabula-relay"]})", first.Stdout);
        Assert.Contains("cmdline \"console=ttyS0,115200 panic=-1 quiet init_on_free=1\"", first.Stdout);
        Assert.Contains("\"Tabula fleet CA\" until ", first.Stdout);
        Assert.Contains("3 modules", first.Stdout);
        Assert.Equal("", first.Stderr);
    }

    [Fact]
    public void Json_output_has_the_sizes_the_goal_and_the_module_load_order()
    {
        var output = Tabula.Ok([.. With(Arguments("relay"), "--fleet-url", "https://[2001:db8::10]/base"), "--cmdline", "console=ttyS1 init_on_free=1", "--json"]);
        var json = Assert.IsType<JsonObject>(JsonNode.Parse(output.Stdout));
        Assert.Equal(new FileInfo(scratch["relay.zip"]).Length, (long)json["archive_bytes"]!);
        Assert.Equal(50_000_000L, (long)json["goal_bytes"]!);
        Assert.True((bool)json["within_goal"]!);
        Assert.Equal(8192L, (long)json["init_bytes"]!);
        Assert.Equal(16384L, (long)json["kernel_bytes"]!);
        Assert.True((long)json["initramfs_uncompressed_bytes"]! > (long)json["initramfs_bytes"]!);
        Assert.Equal("console=ttyS1 init_on_free=1", (string)json["cmdline"]!);
        Assert.Equal("https://[2001:db8::10]/base", (string)json["fleet_url"]!);
        Assert.Equal(["Tabula fleet CA"], json["fleet_ca"]!.AsArray().Select(n => (string)n!));
        Assert.Equal(["/lib/modules/6.1.0-test/kernel/udp_tunnel.ko", "/lib/modules/6.1.0-test/kernel/wireguard.ko",
            "/lib/modules/6.1.0-test/kernel/virtio_net.ko"], json["modules"]!.AsArray().Select(n => (string)n!));
    }

    [Fact]
    public void A_package_over_the_goal_is_written_with_a_warning()
    {
        var output = Tabula.Ok(Arguments("big", kernelBytes: 51_000_000));
        Assert.Contains("(goal ≤ 50.0 MB: NOT met)", output.Stdout);
        Assert.Contains("over the 50.0 MB goal", output.Stderr);
        Assert.True(new FileInfo(scratch["big.zip"]).Length > 50_000_000);
    }

    [Theory]
    [InlineData("http://fleet.example.net", "https://HOST")]
    [InlineData("https://user:pass@192.0.2.10", "user info")]
    [InlineData("https://fleet_1.example.net", "IP address or a DNS name")]
    [InlineData("not a url", "https://HOST")]
    public void Bad_fleet_url_is_exit_2_with_the_reason_and_no_package(string url, string why)
    {
        var output = Tabula.Run(With(Arguments("relay"), "--fleet-url", url));
        Assert.Equal(2, output.ExitCode);
        Assert.Contains(why, output.Stderr);
        Assert.False(File.Exists(scratch["relay.zip"]) || File.Exists(scratch["relay.json"]) || File.Exists(scratch["relay.zip.tmp"]));
    }

    [Theory]
    [InlineData("console=ttyS1")]
    [InlineData("console=ttyS1 init_on_free=1 init_on_free=0")]
    public void A_cmdline_that_does_not_zero_freed_memory_is_exit_2_and_no_package(string cmdline)
    {
        var output = Tabula.Run([.. Arguments("relay"), "--cmdline", cmdline]);
        Assert.Equal(2, output.ExitCode);
        Assert.Contains("init_on_free=1", output.Stderr);
        Assert.False(File.Exists(scratch["relay.zip"]) || File.Exists(scratch["relay.json"]) || File.Exists(scratch["relay.zip.tmp"]));
    }

    [Theory]
    [InlineData("this is not PEM\n", "no PEM CERTIFICATE block")]
    [InlineData("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "certificate DER is malformed")]
    public void Bad_fleet_ca_is_exit_2_with_the_reason_and_no_package(string pem, string why)
    {
        var args = Arguments("relay");
        File.WriteAllText(scratch["bad-ca.pem"], pem);
        var output = Tabula.Run(With(args, "--fleet-ca", scratch["bad-ca.pem"]));
        Assert.Equal(2, output.ExitCode);
        Assert.Contains($"fleet CA {scratch["bad-ca.pem"]}", output.Stderr);
        Assert.Contains(why, output.Stderr);
        Assert.DoesNotContain("   at ", output.Stderr);                    // one line, no stack trace
        Assert.False(File.Exists(scratch["relay.zip"]) || File.Exists(scratch["relay.json"]));

        output = Tabula.Run(With(args, "--fleet-ca", scratch["tls/ca.key"]));   // the CA's key instead of its certificate
        Assert.Equal(2, output.ExitCode);
        Assert.Contains("holds a PRIVATE KEY block", output.Stderr);
    }

    [Fact]
    public void Missing_agent_is_exit_2_and_an_existing_package_needs_force()
    {
        var missing = Tabula.Run(With(Arguments("relay"), "--agent", scratch["nope"]));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("/init binary", missing.Stderr);

        var args = Arguments("relay");
        Tabula.Ok(args);
        var again = Tabula.Run(args);
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("exists; pass --force", again.Stderr);
        Tabula.Ok([.. args, "--force"]);
    }

    [Fact]
    public void Ospkg_sign_and_verify_accept_the_package()
    {
        Tabula.Ok(Arguments("relay"));
        Tabula.Ok("keygen", "root", "--out", scratch["root"]);
        Tabula.Ok("keygen", "leaf", "--root-key", scratch["root.key"], "--root-cert", scratch["root.pem"], "--out", scratch["signer"]);
        Tabula.Ok("ospkg", "sign", "--key", scratch["signer.key"], "--cert", scratch["signer.pem"], scratch["relay.json"]);
        var verified = Tabula.Ok("ospkg", "verify", "--descriptor", scratch["relay.json"], "--roots", scratch["root.pem"], "--threshold", "1");
        Assert.Contains("ACCEPTED: 1 found, 1 valid, 1 required", verified.Stdout);
        var inspected = Tabula.Ok("ospkg", "inspect", scratch["relay.json"], "--json");
        var manifest = JsonNode.Parse(inspected.Stdout)!["manifest"]!;
        Assert.Equal("boot/vmlinuz-6.1.0-test", (string)manifest["kernel"]!);
        Assert.Equal("boot/initramfs.cpio.gz", (string)manifest["initramfs"]!);
    }

    [GuestKernelFact]
    public void Debian_kernel_and_default_modules_make_a_package_within_the_goal()
    {
        GuestKernel kernel = GuestKernel.Require();
        string agent = scratch.RandomFile("tabula-relay", 8192);
        Tabula.Ok("fleet", "tls", "init", "--out", scratch["tls"]);
        var output = Tabula.Ok("image", "relay", "--kernel-release", kernel.Release, "--fleet-url", "https://192.0.2.10",
            "--fleet-ca", scratch["tls/ca.pem"], "--agent", agent, "--out", scratch["relay"], "--json");
        var json = JsonNode.Parse(output.Stdout)!;
        Assert.Equal(kernel.KernelPath, (string)json["kernel"]!);
        Assert.True((bool)json["within_goal"]!);
        var modules = json["modules"]!.AsArray().Select(n => Path.GetFileName((string)n!)).ToList();
        foreach (string module in new[] { "wireguard.ko", "virtio_net.ko", "virtio_pci.ko" })
            Assert.Contains(module, modules);
    }
}

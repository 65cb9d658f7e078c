using System.Text.Json.Nodes;
using Tabula.Packaging;
using Tabula.Packaging.Crypto;

namespace Tabula.Cli.Tests;

/// <summary>Issue 16 on the command line: `ospkg create --release --machine-class`, `ospkg inspect`, `trustpolicy create/check --freshness`.</summary>
public sealed class FreshnessCliTests : IDisposable
{
    private readonly Scratch scratch = new();

    public void Dispose() => scratch.Dispose();

    [Fact]
    public void Fresh_ospkg_create_writes_release_and_class_and_inspect_shows_them()
    {
        string kernel = scratch.RandomFile("vmlinuz", 1000), initramfs = scratch.RandomFile("initramfs.cpio", 1000);
        var created = Tabula.Ok("ospkg", "create", "--kernel", kernel, "--initramfs", initramfs, "--release", "7", "--machine-class", "relay", "--out", scratch["os"]);
        Assert.Contains("release 7, machine class relay", created.Stdout);

        using (var archive = OsPackageArchive.Open(File.OpenRead(scratch["os.zip"])))
            Assert.Equal((7L, "relay"), (archive.Manifest.Release, archive.Manifest.MachineClass));

        var text = Tabula.Ok("ospkg", "inspect", scratch["os.json"]);
        Assert.Contains("  release    7", text.Stdout);
        Assert.Contains("  class      relay", text.Stdout);
        var json = JsonNode.Parse(Tabula.Ok("ospkg", "inspect", scratch["os.json"], "--json").Stdout)!;
        Assert.Equal(7, (long)json["manifest"]!["release"]!);
        Assert.Equal("relay", (string)json["manifest"]!["machine_class"]!);
        Assert.NotNull(json["manifest"]!["cmdline"]);   // the old fields stay
    }

    [Fact]
    public void Fresh_ospkg_create_without_release_is_unchanged_and_inspect_omits_the_fields()
    {
        string kernel = scratch.RandomFile("vmlinuz", 1000), initramfs = scratch.RandomFile("initramfs.cpio", 1000);
        var created = Tabula.Ok("ospkg", "create", "--kernel", kernel, "--initramfs", initramfs, "--out", scratch["os"]);
        Assert.DoesNotContain("release", created.Stdout);
        var json = JsonNode.Parse(Tabula.Ok("ospkg", "inspect", scratch["os.json"], "--json").Stdout)!;
        Assert.Null(json["manifest"]!["release"]);
        Assert.Null(json["manifest"]!["machine_class"]);
        Assert.DoesNotContain("release", Tabula.Ok("ospkg", "inspect", scratch["os.json"]).Stdout);
    }

    [Theory]
    [InlineData("--release", "0", "--release must be 1-")]
    [InlineData("--release", "-3", "--release must be 1-")]
    [InlineData("--machine-class", "Relay", "--machine-class must be")]
    public void Fresh_ospkg_create_refuses_bad_release_or_class(string option, string value, string message)
    {
        string kernel = scratch.RandomFile("vmlinuz", 1000), initramfs = scratch.RandomFile("initramfs.cpio", 1000);
        var refused = Tabula.Run("ospkg", "create", "--kernel", kernel, "--initramfs", initramfs, option, value, "--out", scratch["os"]);
        Assert.True(refused.ExitCode == 2, refused.ToString());
        Assert.Contains(message, refused.Stderr);
        Assert.False(File.Exists(scratch["os.zip"]));
    }

    [Fact]
    public void Fresh_trustpolicy_create_writes_freshness_and_ticket_root_and_check_shows_them()
    {
        Tabula.Ok("keygen", "root", "--out", scratch["root"]);
        Tabula.Ok("keygen", "root", "--out", scratch["tls"]);
        byte[] ticketKey = Ed25519.PublicKeyOf(Ed25519.NewPrivateKey());
        File.WriteAllText(scratch["ticket_root.pem"], Ed25519Keys.ToPublicKeyPem(ticketKey));
        var created = Tabula.Ok("trustpolicy", "create", "--roots", scratch["root.pem"], "--threshold", "1", "--tls-roots", scratch["tls.pem"],
            "--freshness", "required", "--min-release", "2", "--machine-class", "relay",
            "--ticket-url", "https://10.198.0.1:8443/boot/v1/ticket", "--ticket-root", scratch["ticket_root.pem"], "--out", scratch["trust"], "--json");
        var json = JsonNode.Parse(created.Stdout)!;
        Assert.Equal("required", (string)json["freshness"]!["mode"]!);
        Assert.Equal(2, (long)json["freshness"]!["min_release"]!);

        var folder = TrustPolicyFolder.Load(scratch["trust"]);
        Assert.Equal(new FreshnessPolicy(FreshnessMode.Required, 2, "relay", new Uri("https://10.198.0.1:8443/boot/v1/ticket")), folder.Policy.Freshness);
        Assert.Equal(ticketKey, folder.TicketRoot);

        var check = Tabula.Ok("trustpolicy", "check", scratch["trust"]);
        Assert.Contains("freshness required (min_release 2, class relay, ticket https://10.198.0.1:8443/boot/v1/ticket, ticket root sha256 " +
            Hex.Encode(System.Security.Cryptography.SHA256.HashData(ticketKey)) + ")", check.Stdout);
        var checkJson = JsonNode.Parse(Tabula.Ok("trustpolicy", "check", scratch["trust"], "--json").Stdout)!;
        Assert.Equal("relay", (string)checkJson["freshness"]!["machine_class"]!);
    }

    [Theory]
    [InlineData(new[] { "--min-release", "1" }, "--min-release needs --freshness")]
    [InlineData(new[] { "--freshness", "required" }, "--freshness needs --ticket-url")]
    [InlineData(new[] { "--freshness", "optional", "--ticket-url", "http://a/t" }, "--ticket-url must be an absolute https URL")]
    [InlineData(new[] { "--freshness", "optional", "--ticket-url", "https://a/t" }, "--freshness needs --ticket-root")]
    [InlineData(new[] { "--freshness", "optional", "--ticket-url", "https://a/t", "--ticket-root", "ROOT" }, "--ticket-root")]
    [InlineData(new[] { "--freshness", "sometimes" }, "sometimes")]
    public void Fresh_trustpolicy_create_refuses_incomplete_freshness(string[] extra, string message)
    {
        Tabula.Ok("keygen", "root", "--out", scratch["root"]);
        string[] args = ["trustpolicy", "create", "--roots", scratch["root.pem"], "--threshold", "1", "--tls-roots", scratch["root.pem"],
            .. extra.Select(a => a == "ROOT" ? scratch["root.pem"] : a), "--out", scratch["trust"]];
        var refused = Tabula.Run(args);
        Assert.True(refused.ExitCode == 2, refused.ToString());
        Assert.Contains(message, refused.Stderr);
        Assert.False(File.Exists(Path.Combine(scratch["trust"], "trust_policy.json")));
    }
}

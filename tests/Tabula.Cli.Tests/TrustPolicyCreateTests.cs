using System.Text.Json.Nodes;

namespace Tabula.Cli.Tests;

/// <summary>`tabula trustpolicy create`: the folder it writes passes `trustpolicy check` with the values given.</summary>
public sealed class TrustPolicyCreateTests : IDisposable
{
    private readonly Scratch scratch = new();

    public TrustPolicyCreateTests()
    {
        Tabula.Ok("keygen", "root", "--out", scratch["root"]);
        Tabula.Ok("keygen", "root", "--out", scratch["tls"]);
    }

    public void Dispose() => scratch.Dispose();

    [Fact]
    public void Create_then_check_gives_the_same_threshold_method_and_roots()
    {
        var created = Tabula.Ok("trustpolicy", "create", "--roots", scratch["root.pem"], "--threshold", "3",
            "--tls-roots", scratch["tls.pem"], "--out", scratch["trust"], "--json");
        var json = JsonNode.Parse(created.Stdout)!;
        Assert.True((bool)json["valid"]!);
        Assert.Equal("threshold 3, fetch network, 1 signing root(s), 1 TLS root(s)", (string)json["summary"]!);
        Assert.Empty(json["warnings"]!.AsArray());

        var checkedOutput = Tabula.Ok("trustpolicy", "check", scratch["trust"], "--json");
        Assert.StartsWith("threshold 3, fetch network, 1 signing root(s), 1 TLS root(s)", (string)JsonNode.Parse(checkedOutput.Stdout)!["summary"]!);
        Assert.Equal(File.ReadAllText(scratch["root.pem"]), File.ReadAllText(Path.Combine(scratch["trust"], "ospkg_signing_root.pem")));
        Assert.Equal(File.ReadAllText(scratch["tls.pem"]), File.ReadAllText(Path.Combine(scratch["trust"], "tls_roots.pem")));
    }

    [Theory]
    [InlineData("required", "measured boot required")]
    [InlineData("optional", "measured boot optional")]
    [InlineData(null, "measured boot unset (stboot measures when it finds a TPM, boots without one)")]
    public void Check_shows_the_measured_boot_mode(string? mode, string phrase)
    {
        string[] measured = mode is null ? [] : ["--measured-boot", mode];
        var created = Tabula.Ok(["trustpolicy", "create", "--roots", scratch["root.pem"], "--threshold", "1", "--tls-roots", scratch["tls.pem"],
            .. measured, "--out", scratch["trust"], "--json"]);
        Assert.Equal(mode ?? "unset", (string)JsonNode.Parse(created.Stdout)!["measured_boot"]!);

        Assert.EndsWith(", " + phrase, Tabula.Ok("trustpolicy", "check", scratch["trust"]).Stdout.TrimEnd());
        var json = JsonNode.Parse(Tabula.Ok("trustpolicy", "check", scratch["trust"], "--json").Stdout)!;
        Assert.Equal(mode ?? "unset", (string)json["measured_boot"]!);
        Assert.EndsWith(", " + phrase, (string)json["summary"]!);
    }

    [Fact]
    public void Initramfs_fetch_without_tls_roots_writes_no_tls_file_and_no_warning()
    {
        var created = Tabula.Ok("trustpolicy", "create", "--roots", scratch["root.pem"], "--threshold", "1",
            "--fetch-method", "initramfs", "--out", scratch["trust"]);
        Assert.Contains("threshold 1, fetch initramfs", created.Stdout);
        Assert.DoesNotContain("warning", created.Stderr);
        Assert.False(File.Exists(Path.Combine(scratch["trust"], "tls_roots.pem")));
    }

    [Fact]
    public void Network_fetch_without_tls_roots_warns()
    {
        var created = Tabula.Ok("trustpolicy", "create", "--roots", scratch["root.pem"], "--threshold", "1", "--out", scratch["trust"]);
        Assert.Contains("plain HTTP", created.Stderr);
    }

    [Theory]
    [InlineData("0", "--threshold must be 1-64")]
    [InlineData("65", "--threshold must be 1-64")]
    public void A_threshold_out_of_range_is_refused(string threshold, string message)
    {
        var refused = Tabula.Run("trustpolicy", "create", "--roots", scratch["root.pem"], "--threshold", threshold, "--out", scratch["trust"]);
        Assert.True(refused.ExitCode == 2, refused.ToString());
        Assert.Contains(message, refused.Stderr);
        Assert.False(Directory.Exists(scratch["trust"]));
    }

    [Fact]
    public void Roots_that_are_not_pem_and_an_existing_policy_are_refused()
    {
        File.WriteAllText(scratch["junk.pem"], "not a certificate");
        var refused = Tabula.Run("trustpolicy", "create", "--roots", scratch["junk.pem"], "--threshold", "1", "--out", scratch["trust"]);
        Assert.True(refused.ExitCode == 2, refused.ToString());
        Assert.Contains("--roots", refused.Stderr);

        Tabula.Ok("trustpolicy", "create", "--roots", scratch["root.pem"], "--threshold", "1", "--out", scratch["trust"]);
        var again = Tabula.Run("trustpolicy", "create", "--roots", scratch["root.pem"], "--threshold", "2", "--out", scratch["trust"]);
        Assert.True(again.ExitCode == 2, again.ToString());
        Assert.Contains("already exists", again.Stderr);
        Assert.Contains("threshold 1", Tabula.Ok("trustpolicy", "check", scratch["trust"]).Stdout);
    }

    [Fact]
    public void Help_explains_every_option_with_an_example()
    {
        var help = Tabula.Ok("trustpolicy", "create", "--help");
        foreach (string text in new[] { "--roots", "--threshold", "--tls-roots", "--fetch-method", "--out", "--json", "Example:" })
            Assert.Contains(text, help.Stdout);
    }
}

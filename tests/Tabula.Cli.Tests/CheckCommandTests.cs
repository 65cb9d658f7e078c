namespace Tabula.Cli.Tests;

/// <summary>`tabula hostconfig check` and `tabula trustpolicy check` on the upstream vectors (README's st1 column).</summary>
public sealed class CheckCommandTests : IDisposable
{
    private readonly Scratch scratch = new();

    public void Dispose() => scratch.Dispose();

    [Theory]
    [InlineData("stmgr-v0.6.6/hostconfigs/compat-1.txt")]
    [InlineData("stmgr-v0.6.6/hostconfigs/compat-2.txt")]
    [InlineData("stmgr-v0.6.6/hostconfigs/compat-3.txt")]
    [InlineData("stboot-v0.2.x/opts-testdata/host_good_all_set.json")]
    [InlineData("stboot-legacy-2021/host_configuration.json")]
    [InlineData("system-transparency-legacy/example_host_configuration.json")]
    public void Hostconfig_check_accepts_upstream_config_valid_in_st1(string vector)
    {
        var output = Tabula.Run("hostconfig", "check", Vectors.PathOf(vector));
        Assert.True(output.ExitCode == 0, output.ToString());
        Assert.Contains(": valid: ", output.Stdout);
    }

    [Fact]
    public void Hostconfig_check_rejects_upstream_unset_config_naming_network_mode()
    {
        var output = Tabula.Run("hostconfig", "check", Vectors.PathOf("stboot-v0.2.x/opts-testdata/host_bad_unset.json"));
        Assert.True(output.ExitCode == 2, output.ToString());
        Assert.Contains(": invalid: ", output.Stderr);
        Assert.Contains("network_mode", output.Stderr);
    }

    [Theory]
    [InlineData("trust_policy_good_all_set.json", 0, "threshold 1, fetch network")]
    [InlineData("trust_policy_bad_unset.json", 2, "ospkg_signature_threshold")]
    public void Trustpolicy_check_of_an_upstream_policy_with_the_upstream_root_gives_its_expected_validity(string policy, int exitCode, string expected)
    {
        string folder = Directory.CreateDirectory(scratch["trust_policy"]).FullName;
        File.Copy(Vectors.PathOf($"stboot-v0.2.x/opts-testdata/{policy}"), Path.Combine(folder, "trust_policy.json"));
        File.Copy(Vectors.PathOf("stboot-v0.2.x/opts-testdata/cert.pem"), Path.Combine(folder, "ospkg_signing_root.pem"));
        var output = Tabula.Run("trustpolicy", "check", folder);
        Assert.True(output.ExitCode == exitCode, output.ToString());
        Assert.Contains(expected, output.Stdout + output.Stderr);
    }
}

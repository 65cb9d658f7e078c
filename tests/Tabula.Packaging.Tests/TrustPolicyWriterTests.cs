using System.Text;

namespace Tabula.Packaging.Tests;

/// <summary>The trust policy writer: whatever it writes, the parser stboot uses reads back to the same values.</summary>
public sealed class TrustPolicyWriterTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("tabula-trust-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    [Theory]
    [InlineData(1, FetchMethod.Network)]
    [InlineData(2, FetchMethod.Initramfs)]
    [InlineData(Limits.MaxSignatures, FetchMethod.Network)]
    public void Written_policy_json_parses_to_identical_values(int threshold, FetchMethod method)
    {
        var policy = new TrustPolicy(threshold, method);
        Assert.Equal(policy, TrustPolicy.Parse(policy.ToJson()));
    }

    [Fact]
    public void Policy_json_has_stmgrs_keys_in_order_and_a_final_newline()
    {
        string json = Encoding.UTF8.GetString(new TrustPolicy(3, FetchMethod.Network).ToJson());
        Assert.Equal("{\n  \"ospkg_signature_threshold\": 3,\n  \"ospkg_fetch_method\": \"network\"\n}\n", json);
    }

    [Theory, InlineData(0), InlineData(-1), InlineData(Limits.MaxSignatures + 1)]
    public void A_threshold_the_parser_would_refuse_is_not_written(int threshold) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new TrustPolicy(threshold, FetchMethod.Network).ToJson());

    [Theory, InlineData(false), InlineData(true)]
    public void Written_folder_loads_back_to_identical_values(bool withTls)
    {
        Signer root = TestPki.Root(), second = TestPki.Root(), tlsCa = TestPki.Root();
        var folder = new TrustPolicyFolder(new TrustPolicy(2, FetchMethod.Network), [root.Certificate, second.Certificate],
            withTls ? [tlsCa.Certificate] : null, null);
        string target = Path.Combine(directory, "trust");

        folder.Write(target);
        var loaded = TrustPolicyFolder.Load(target);

        Assert.Equal(folder.Policy, loaded.Policy);
        Assert.False(loaded.Policy.IsLegacy);
        Assert.Equal(folder.SigningRoots.Select(c => c.Der), loaded.SigningRoots.Select(c => c.Der));
        Assert.Equal(folder.TlsRoots?.Select(c => c.Der), loaded.TlsRoots?.Select(c => c.Der));
        Assert.Null(loaded.Sigsum);
        Assert.Equal(withTls, File.Exists(Path.Combine(target, TrustPolicyFolder.TlsRootsFile)));
    }

    [Theory, InlineData(TrustPolicyFolder.PolicyFile), InlineData(TrustPolicyFolder.LegacyPolicyFile), InlineData(TrustPolicyFolder.SigsumPolicyFile)]
    public void A_folder_that_already_holds_a_policy_file_is_not_overwritten(string existing)
    {
        File.WriteAllText(Path.Combine(directory, existing), "old");
        var folder = new TrustPolicyFolder(new TrustPolicy(1, FetchMethod.Network), [TestPki.Root().Certificate], null, null);
        Assert.Throws<IOException>(() => folder.Write(directory));
        Assert.Equal("old", File.ReadAllText(Path.Combine(directory, existing)));
        Assert.False(File.Exists(Path.Combine(directory, TrustPolicyFolder.SigningRootFile)));
    }

    [Fact]
    public void A_folder_without_roots_is_not_written() =>
        Assert.Throws<ArgumentException>(() =>
            new TrustPolicyFolder(new TrustPolicy(1, FetchMethod.Network), [], null, null).Write(Path.Combine(directory, "empty")));
}

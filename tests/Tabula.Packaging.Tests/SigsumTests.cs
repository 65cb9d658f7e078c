using System.Security.Cryptography;
using System.Text;

namespace Tabula.Packaging.Tests;

public sealed class SigsumTests
{
    private static readonly string ProofText = Encoding.ASCII.GetString(Vectors.Read("st-upstream/sigsum-rs/hello-sigsum.proof"));
    private static readonly byte[] Message = SHA256.HashData(Vectors.Read("st-upstream/sigsum-rs/hello-sigsum.data"));
    private static readonly byte[] Submitter = Convert.FromHexString(Encoding.ASCII.GetString(Vectors.Read("st-upstream/sigsum-rs/hello-sigsum.submitter-pubkey.hex")).Trim());
    private static readonly SigsumPolicy Policy = SigsumPolicy.Parse(Vectors.Read("st-upstream/sigsum-rs/sigsum-test-2025-3.builtin-policy"));

    private static string? Check(string proofText) =>
        SigsumVerifier.Verify(SigsumProof.Parse(Encoding.ASCII.GetBytes(proofText)), Message, Submitter, Policy);

    [Fact]
    public void Real_upstream_proof_verifies()
    {
        var proof = SigsumProof.Parse(Encoding.ASCII.GetBytes(ProofText));
        Assert.Equal(381382UL, proof.Size);
        Assert.Equal(381381UL, proof.LeafIndex);
        Assert.Equal(8, proof.Cosignatures.Count);
        Assert.Equal(10, proof.NodeHashes.Count);
        Assert.Null(Check(ProofText));
    }

    [Fact]
    public void Policy_parses_logs_witnesses_and_nested_groups()
    {
        Assert.Equal(2, Policy.Logs.Count);
        Assert.Equal(8, Policy.Witnesses.Count);
        var quorum = Assert.IsType<SigsumPolicy.Group>(Policy.Quorum);
        Assert.Equal(4, quorum.Threshold);
        Assert.Equal(6, quorum.Members.Count);
    }

    /// <summary>Flips the last hex digit of the value on the first line starting with <paramref name="prefix"/>.</summary>
    private static string FlipLine(string prefix)
    {
        var lines = ProofText.Split('\n');
        int i = Array.FindIndex(lines, l => l.StartsWith(prefix, StringComparison.Ordinal));
        Assert.True(i >= 0, prefix);
        char last = lines[i][^1];
        lines[i] = lines[i][..^1] + (last == '0' ? '1' : '0');
        return string.Join('\n', lines);
    }

    [Theory]
    [InlineData("leaf=", "leaf signature")]
    [InlineData("signature=", "log signature")]
    [InlineData("root_hash=", "log signature")]
    [InlineData("node_hash=", "inclusion proof")]
    [InlineData("leaf_index=", "inclusion proof")]
    public void One_flipped_value_makes_the_proof_fail(string line, string expectedReason)
    {
        string? failure = Check(FlipLine(line));
        Assert.NotNull(failure);
        Assert.Contains(expectedReason, failure);
    }

    [Fact]
    public void Changed_size_breaks_the_log_signature()
    {
        Assert.Contains("log signature", Check(ProofText.Replace("size=381382", "size=381383"))!);
    }

    [Fact]
    public void Quorum_needs_four_of_six_members_counting_the_glasklar_group_as_one()
    {
        var lines = ProofText.Split('\n').ToList();
        var cosignatures = lines.Where(l => l.StartsWith("cosignature=", StringComparison.Ordinal)).ToList();
        // Which witness each cosignature belongs to, by name, via the policy.
        string NameOf(string line) => Policy.Witnesses[line.Split('=', ' ')[1]].Name;
        string Without(params string[] names) =>
            string.Join('\n', lines.Where(l => !l.StartsWith("cosignature=", StringComparison.Ordinal) || !names.Contains(NameOf(l))));

        // Dropping two of the three Glasklar witnesses loses that group; 5 other members remain: quorum holds.
        Assert.Null(Check(Without("poc.sigsum.org/nisse", "rgdd.se/poc-witness")));
        // Dropping the group and two more leaves 3 of 6: quorum fails.
        Assert.Contains("quorum", Check(Without("poc.sigsum.org/nisse", "rgdd.se/poc-witness", "remora.n621.de", "witness.stagemole.eu"))!);
        // Dropping three non-Glasklar members leaves the group + 2 = 3 of 6: fails; dropping two leaves 4: holds.
        Assert.Null(Check(Without("remora.n621.de", "witness.stagemole.eu")));
        Assert.Contains("quorum", Check(Without("remora.n621.de", "witness.stagemole.eu", "tillitis.se/test-witness-1"))!);
        Assert.Equal(8, cosignatures.Count);
    }

    [Fact]
    public void Proof_from_another_submitter_key_is_refused()
    {
        var other = (byte[])Submitter.Clone();
        other[0] ^= 1;
        Assert.Contains("another key", SigsumVerifier.Verify(SigsumProof.Parse(Encoding.ASCII.GetBytes(ProofText)), Message, other, Policy)!);
    }

    [Fact]
    public void Proof_from_a_log_outside_the_policy_is_refused()
    {
        var policy = SigsumPolicy.Parse("log 0000000000000000000000000000000000000000000000000000000000000000\nquorum none\n"u8);
        Assert.Contains("does not accept", SigsumVerifier.Verify(SigsumProof.Parse(Encoding.ASCII.GetBytes(ProofText)), Message, Submitter, policy)!);
    }

    [Theory]
    [InlineData("version=1\n")]
    [InlineData("version=2\nlog=zz\n")]
    [InlineData("")]
    public void Malformed_proofs_throw_a_typed_error(string text)
    {
        var e = Assert.Throws<PackageFormatException>(() => SigsumProof.Parse(Encoding.ASCII.GetBytes(text)));
        Assert.Equal(FormatError.InvalidSigsum, e.Error);
    }

    [Theory]
    [InlineData("quorum none\n", "no log")]
    [InlineData("log 4644af2abd40f4895a003bca350f9d5912ab301a49c77f13e5b6d905c20a5fe6\n", "no quorum")]
    [InlineData("log 4644af2abd40f4895a003bca350f9d5912ab301a49c77f13e5b6d905c20a5fe6\ngroup g 1 nobody\nquorum g\n", "unknown member")]
    [InlineData("log 4644af2abd40f4895a003bca350f9d5912ab301a49c77f13e5b6d905c20a5fe6\nfrobnicate\nquorum none\n", "unknown keyword")]
    public void Malformed_policies_name_the_problem(string text, string expected)
    {
        var e = Assert.Throws<PackageFormatException>(() => SigsumPolicy.Parse(Encoding.UTF8.GetBytes(text)));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Inclusion_proof_for_a_single_leaf_tree_is_the_leaf_itself()
    {
        byte[] leaf = SHA256.HashData("x"u8);
        Assert.True(SigsumVerifier.InclusionProofHolds(leaf, 0, 1, [], leaf));
        Assert.False(SigsumVerifier.InclusionProofHolds(leaf, 1, 1, [], leaf));
    }
}

using System.Text;
using Tabula.Packaging.Crypto;
using static Tabula.Packaging.Tests.TestPki;

namespace Tabula.Packaging.Tests;

public sealed class PackageVerifierTests
{
    private static readonly Descriptor Unsigned = Descriptor.Unsigned("os.zip");

    [Fact]
    public void Verify_accepts_two_of_three_signers_at_threshold_two()
    {
        var root = Root();
        var archive = Archive();
        var descriptor = Sign(Unsigned, archive, Leaf(root), Leaf(root));
        var result = PackageVerifier.Verify(descriptor, archive.Sha256, Policy(2, root), Now);
        Assert.True(result.Accepted);
        Assert.Equal((2, 2, 2), (result.Found, result.Valid, result.Required));
        Assert.All(result.Checks, c => Assert.Null(c.Rejection));
    }

    [Fact]
    public void Verify_refuses_archive_with_one_flipped_byte()
    {
        var root = Root();
        var archive = Archive();
        var descriptor = Sign(Unsigned, archive, Leaf(root), Leaf(root));
        byte[] tampered = archive.Bytes.ToArray();
        tampered[^100] ^= 0x01;
        var result = PackageVerifier.Verify(descriptor, new TestArchive(tampered).Sha256, Policy(1, root), Now);
        Assert.False(result.Accepted);
        Assert.All(result.Checks, c => Assert.Equal(SignatureRejection.SignatureInvalid, c.Rejection));
    }

    [Fact]
    public void Verify_refuses_when_valid_signatures_are_below_threshold()
    {
        var root = Root();
        var archive = Archive();
        var result = PackageVerifier.Verify(Sign(Unsigned, archive, Leaf(root), Leaf(root)), archive.Sha256, Policy(3, root), Now);
        Assert.False(result.Accepted);
        Assert.Equal((2, 2, 3), (result.Found, result.Valid, result.Required));
    }

    [Fact]
    public void Verify_refuses_unsigned_descriptor()
    {
        var result = PackageVerifier.Verify(Unsigned, Archive().Sha256, Policy(1, Root()), Now);
        Assert.False(result.Accepted);
        Assert.Equal(0, result.Found);
    }

    [Fact]
    public void Verify_skips_signer_under_another_root()
    {
        var root = Root();
        var rogue = Root();
        var archive = Archive();
        var result = PackageVerifier.Verify(Sign(Unsigned, archive, Leaf(root), Leaf(rogue)), archive.Sha256, Policy(2, root), Now);
        Assert.False(result.Accepted);
        Assert.Null(result.Checks[0].Rejection);
        Assert.Equal(SignatureRejection.NotIssuedByRoot, result.Checks[1].Rejection);
    }

    [Fact]
    public void Verify_accepts_signers_under_any_of_several_roots()
    {
        var (a, b) = (Root(), Root());
        var archive = Archive();
        var result = PackageVerifier.Verify(Sign(Unsigned, archive, Leaf(a), Leaf(b)), archive.Sha256, Policy(2, a, b), Now);
        Assert.True(result.Accepted);
    }

    [Fact]
    public void Verify_accepts_a_root_signing_directly()
    {
        var root = Root();
        var archive = Archive();
        var result = PackageVerifier.Verify(Sign(Unsigned, archive, root), archive.Sha256, Policy(1, root), Now);
        Assert.True(result.Accepted);
    }

    [Fact]
    public void Verify_refuses_chain_through_an_intermediate()
    {
        var root = Root();
        // A leaf of the root, used as an issuer: a chain of length 3 must not verify.
        byte[] intermediateKey = Ed25519.NewPrivateKey();
        var intermediate = new Signer(intermediateKey, Certificate.Parse(
            CertificateBuilder.CreateRoot(intermediateKey, Now.AddDays(-1), Now.AddYears(1))));
        var leafOfIntermediate = Leaf(intermediate);
        var archive = Archive();
        var result = PackageVerifier.Verify(Sign(Unsigned, archive, leafOfIntermediate), archive.Sha256, Policy(1, root), Now);
        Assert.Equal(SignatureRejection.NotIssuedByRoot, Assert.Single(result.Checks).Rejection);
    }

    [Theory]
    [InlineData(-30, -1, "leaf expired")]
    [InlineData(1, 30, "leaf not yet valid")]
    public void Verify_refuses_leaf_outside_its_validity(int fromDays, int untilDays, string why)
    {
        var root = Root();
        var archive = Archive();
        var leaf = Leaf(root, Now.AddDays(fromDays), Now.AddDays(untilDays));
        var result = PackageVerifier.Verify(Sign(Unsigned, archive, leaf), archive.Sha256, Policy(1, root), Now);
        Assert.True(result.Checks[0].Rejection == SignatureRejection.CertificateNotValidAtTime, why);
    }

    [Fact]
    public void Verify_refuses_leaf_of_an_expired_root()
    {
        var root = Root(Now.AddYears(-2), Now.AddDays(-1));
        var archive = Archive();
        var leaf = Leaf(root, Now.AddYears(-1), Now.AddYears(1));
        var result = PackageVerifier.Verify(Sign(Unsigned, archive, leaf), archive.Sha256, Policy(1, root), Now);
        Assert.Equal(SignatureRejection.CertificateNotValidAtTime, result.Checks[0].Rejection);
        Assert.Contains("root", result.Checks[0].Reason);
    }

    [Fact]
    public void Verify_uses_the_given_time_not_the_clock()
    {
        var root = Root(Now.AddYears(-3), Now.AddYears(3));
        var archive = Archive();
        var leaf = Leaf(root, Now.AddYears(-2), Now.AddYears(-1));
        var descriptor = Sign(Unsigned, archive, leaf);
        Assert.False(PackageVerifier.Verify(descriptor, archive.Sha256, Policy(1, root), Now).Accepted);
        Assert.True(PackageVerifier.Verify(descriptor, archive.Sha256, Policy(1, root), Now.AddMonths(-18)).Accepted);
    }

    [Fact]
    public void Verify_counts_one_key_once_even_with_two_certificates()
    {
        var root = Root();
        var archive = Archive();
        byte[] key = Ed25519.NewPrivateKey();
        var first = Leaf(root, privateKey: key);
        var second = Leaf(root, privateKey: key); // a re-issued certificate for the same key
        Assert.False(first.Certificate.Der.AsSpan().SequenceEqual(second.Certificate.Der));
        var result = PackageVerifier.Verify(Sign(Unsigned, archive, first, second), archive.Sha256, Policy(2, root), Now);
        Assert.False(result.Accepted);
        Assert.Equal(1, result.Valid);
        Assert.Equal(SignatureRejection.DuplicateSignerKey, result.Checks[1].Rejection);
    }

    [Fact]
    public void Verify_counts_a_good_signature_after_a_bad_one_by_the_same_key()
    {
        // stboot v0.2 marks the certificate used before checking the signature, so this counted 0 there.
        var root = Root();
        var archive = Archive();
        var signer = Leaf(root);
        var descriptor = Unsigned.AddSignature(signer.CertificatePem, new byte[64]);
        descriptor = Sign(descriptor, archive, signer);
        var result = PackageVerifier.Verify(descriptor, archive.Sha256, Policy(1, root), Now);
        Assert.True(result.Accepted);
        Assert.Equal(SignatureRejection.SignatureInvalid, result.Checks[0].Rejection);
        Assert.Null(result.Checks[1].Rejection);
    }

    [Fact]
    public void Verify_skips_a_der_certificate_entry_but_counts_the_others()
    {
        var root = Root();
        var archive = Archive();
        var good = Leaf(root);
        var der = Leaf(root);
        var descriptor = Sign(Unsigned, archive, good) with
        {
            Certificates = [Convert.ToBase64String(Encoding.ASCII.GetBytes(good.CertificatePem)), Convert.ToBase64String(der.Certificate.Der)],
            Signatures = [Convert.ToBase64String(Ed25519.Sign(good.PrivateKey, archive.Sha256)), Convert.ToBase64String(Ed25519.Sign(der.PrivateKey, archive.Sha256))],
        };
        var result = PackageVerifier.Verify(descriptor, archive.Sha256, Policy(1, root), Now);
        Assert.True(result.Accepted);
        Assert.Equal(SignatureRejection.CertificateNotPem, result.Checks[1].Rejection);
    }

    [Theory]
    [InlineData("not base64!", SignatureRejection.CertificateNotBase64)]
    [InlineData("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkZPTwotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg==", SignatureRejection.CertificateUnparsable)]
    public void Verify_skips_unusable_certificate_entries(string entry, SignatureRejection expected)
    {
        var descriptor = new Descriptor("os.zip", [entry], [Convert.ToBase64String(new byte[64])]);
        var result = PackageVerifier.Verify(descriptor, new byte[32], Policy(1, Root()), Now);
        Assert.Equal(expected, Assert.Single(result.Checks).Rejection);
    }

    [Fact]
    public void Verify_signature_is_over_the_digest_not_the_raw_archive()
    {
        var root = Root();
        var signer = Leaf(root);
        var archive = Archive();
        var overRaw = Unsigned.AddSignature(signer.CertificatePem, Ed25519.Sign(signer.PrivateKey, archive.Bytes));
        Assert.False(PackageVerifier.Verify(overRaw, archive.Sha256, Policy(1, root), Now).Accepted);
    }

    [Fact]
    public void Verify_refuses_bare_signature_when_sigsum_policy_is_configured()
    {
        var root = Root();
        var archive = Archive();
        var policy = new VerificationPolicy([root.Certificate], 1, SigsumPolicy.Parse(Vectors.Read("st-upstream/sigsum-rs/sigsum-test-2025-3.builtin-policy")));
        var result = PackageVerifier.Verify(Sign(Unsigned, archive, Leaf(root)), archive.Sha256, policy, Now);
        Assert.Equal(SignatureRejection.SigsumProofRequired, Assert.Single(result.Checks).Rejection);
    }

    [Fact]
    public void Verify_accepts_the_real_sigsum_proof_through_a_descriptor()
    {
        // The upstream proof logs SHA-256(hello-sigsum.data) under the submitter key; treating that file
        // as the archive, a certificate for the submitter key under our root makes a Sigsum-signed package.
        var (descriptor, digest, policy) = SigsumPackage(Vectors.Read("st-upstream/sigsum-rs/hello-sigsum.proof"), out _);
        var result = PackageVerifier.Verify(descriptor, digest, policy, Now);
        Assert.True(result.Accepted, result.Checks[0].Reason);
    }

    [Fact]
    public void Verify_refuses_the_real_sigsum_proof_for_other_archive_bytes()
    {
        var (descriptor, digest, policy) = SigsumPackage(Vectors.Read("st-upstream/sigsum-rs/hello-sigsum.proof"), out _);
        digest[0] ^= 1;
        var result = PackageVerifier.Verify(descriptor, digest, policy, Now);
        Assert.Equal(SignatureRejection.SigsumProofInvalid, result.Checks[0].Rejection);
    }

    [Fact]
    public void Verify_refuses_a_sigsum_proof_without_a_sigsum_policy()
    {
        var (descriptor, digest, policy) = SigsumPackage(Vectors.Read("st-upstream/sigsum-rs/hello-sigsum.proof"), out _);
        var result = PackageVerifier.Verify(descriptor, digest, policy with { Sigsum = null }, Now);
        Assert.Equal(SignatureRejection.SigsumPolicyMissing, result.Checks[0].Rejection);
    }

    internal static (Descriptor, byte[], VerificationPolicy) SigsumPackage(byte[] proof, out Signer root)
    {
        root = Root();
        byte[] submitter = Convert.FromHexString(Encoding.ASCII.GetString(Vectors.Read("st-upstream/sigsum-rs/hello-sigsum.submitter-pubkey.hex")).Trim());
        var certificate = Certificate.Parse(CertificateBuilder.CreateLeaf(root.PrivateKey, root.Certificate, submitter, Now.AddDays(-1), Now.AddYears(1)));
        var descriptor = Unsigned.AddSignature(Pem.EncodeCertificate(certificate.Der), proof);
        byte[] digest = System.Security.Cryptography.SHA256.HashData(Vectors.Read("st-upstream/sigsum-rs/hello-sigsum.data"));
        var policy = new VerificationPolicy([root.Certificate], 1, SigsumPolicy.Parse(Vectors.Read("st-upstream/sigsum-rs/sigsum-test-2025-3.builtin-policy")));
        return (descriptor, digest, policy);
    }

    [Fact]
    public void Verify_refuses_a_leaf_whose_key_is_not_ed25519()
    {
        // An RSA self-signed root from upstream, "signing" as itself: parses, chains, but is not Ed25519.
        var rsaRoot = Certificate.ParsePemBundle(Vectors.Read("st-upstream/stboot-v0.2.x/opts-testdata/cert.pem"))[0];
        var descriptor = Unsigned.AddSignature(Pem.EncodeCertificate(rsaRoot.Der), new byte[64]);
        var result = PackageVerifier.Verify(descriptor, new byte[32], new VerificationPolicy([rsaRoot], 1), Now);
        Assert.Equal(SignatureRejection.NotEd25519, result.Checks[0].Rejection);
    }
}

public sealed class ExtendedKeyUsageTests
{
    [Theory]
    [InlineData(null, true)]                                  // no EKU: passes (Go)
    [InlineData(new[] { "1.3.6.1.5.5.7.3.1" }, true)]         // serverAuth
    [InlineData(new[] { "2.5.29.37.0" }, true)]               // anyExtendedKeyUsage
    [InlineData(new[] { "1.3.6.1.5.5.7.3.3" }, false)]        // codeSigning only: stboot's quirk rejects it
    [InlineData(new[] { "1.3.6.1.5.5.7.3.3", "1.3.6.1.5.5.7.3.1" }, true)]
    public void Verify_applies_stboots_extended_key_usage_rule(string[]? usages, bool accepted)
    {
        var root = TestPki.Root();
        byte[] key = Ed25519.NewPrivateKey();
        var leaf = new Signer(key, Certificate.Parse(CertificateBuilder.CreateLeaf(root.PrivateKey, root.Certificate,
            Ed25519.PublicKeyOf(key), TestPki.Now.AddDays(-1), TestPki.Now.AddDays(30), usages)));
        var archive = TestPki.Archive();
        var result = PackageVerifier.Verify(TestPki.Sign(Descriptor.Unsigned("os.zip"), archive, leaf), archive.Sha256, TestPki.Policy(1, root), TestPki.Now);
        Assert.Equal(accepted, result.Accepted);
        if (!accepted) Assert.Equal(SignatureRejection.IncompatibleKeyUsage, result.Checks[0].Rejection);
    }
}

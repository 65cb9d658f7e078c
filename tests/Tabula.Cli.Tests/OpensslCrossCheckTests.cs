using System.Text;
using System.Text.Json.Nodes;

namespace Tabula.Cli.Tests;

/// <summary>
/// Cross-checks with an independent implementation (openssl 3): openssl verifies our signatures, and our
/// verifier accepts what openssl signs, with stboot's rules on extended key usage and mixed-algorithm chains.
/// </summary>
public sealed class OpensslCrossCheckTests(SignerKeys keys) : IClassFixture<SignerKeys>, IDisposable
{
    private readonly Scratch scratch = new();

    public void Dispose() => scratch.Dispose();

    [Fact]
    public void Openssl_verifies_our_package_signatures_over_the_archive_digest()
    {
        var package = keys.CreateSigned(scratch, "signer1", "signer2");
        Openssl.Ok(scratch.Dir, "dgst", "-sha256", "-binary", "-out", "digest.bin", "os.zip");
        Assert.Equal(32, new FileInfo(scratch["digest.bin"]).Length);
        var descriptor = package.ReadDescriptor();
        for (int i = 0; i < 2; i++)
        {
            File.WriteAllBytes(scratch[$"cert{i}.pem"], Convert.FromBase64String(descriptor["certificates"]![i]!.GetValue<string>()));
            File.WriteAllBytes(scratch[$"sig{i}.bin"], Convert.FromBase64String(descriptor["signatures"]![i]!.GetValue<string>()));
            Openssl.Ok(scratch.Dir, "x509", "-in", $"cert{i}.pem", "-pubkey", "-noout", "-out", $"pub{i}.pem");
            var verified = Openssl.Ok(scratch.Dir, "pkeyutl", "-verify", "-pubin", "-inkey", $"pub{i}.pem", "-rawin", "-in", "digest.bin", "-sigfile", $"sig{i}.bin");
            Assert.Contains("Signature Verified Successfully", verified.Stdout);
        }
        // The same check fails for the other signer's signature, so it is not vacuous.
        Assert.NotEqual(0, Openssl.Run(scratch.Dir, "pkeyutl", "-verify", "-pubin", "-inkey", "pub0.pem", "-rawin", "-in", "digest.bin", "-sigfile", "sig1.bin").ExitCode);
    }

    [Fact]
    public void Verify_accepts_a_package_signed_by_openssl_under_an_openssl_root()
    {
        MakeEd25519Root("root");
        MakeLeaf("leaf", "root", eku: null);
        var package = SignWithOpenssl("leaf");
        var (output, json) = package.VerifyJson("--roots", scratch["root.pem"], "--threshold", "1");
        Assert.True(output.ExitCode == 0, output.ToString());
        Assert.Equal(1, json["valid"]!.GetValue<int>());
    }

    [Fact]
    public void Verify_refuses_an_openssl_leaf_with_code_signing_extended_key_usage()
    {
        MakeEd25519Root("root");
        MakeLeaf("leaf", "root", eku: "codeSigning");
        var package = SignWithOpenssl("leaf");
        var (output, json) = package.VerifyJson("--roots", scratch["root.pem"], "--threshold", "1");
        Assert.True(output.ExitCode == 1, output.ToString());
        Assert.Contains("extended key usage", json["signatures"]![0]!["reason"]!.GetValue<string>());
    }

    [Fact]
    public void Verify_accepts_an_openssl_leaf_with_server_auth_extended_key_usage()
    {
        MakeEd25519Root("root");
        MakeLeaf("leaf", "root", eku: "serverAuth");
        var package = SignWithOpenssl("leaf");
        var output = package.Verify("--roots", scratch["root.pem"], "--threshold", "1");
        Assert.True(output.ExitCode == 0, output.ToString());
    }

    [Fact]
    public void Verify_accepts_an_ed25519_leaf_issued_by_an_openssl_ecdsa_p256_root()
    {
        File.WriteAllText(scratch["ca.cnf"], CaConfig);
        Openssl.Ok(scratch.Dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "root.key");
        Openssl.Ok(scratch.Dir, "req", "-x509", "-new", "-key", "root.key", "-sha256", "-config", "ca.cnf", "-extensions", "v3_ca", "-days", "30", "-out", "root.pem");
        Assert.Contains("ecdsa-with-SHA256", Openssl.Ok(scratch.Dir, "x509", "-in", "root.pem", "-noout", "-text").Stdout);
        MakeLeaf("leaf", "root", eku: null, digest: "-sha256");
        var package = SignWithOpenssl("leaf");
        var output = package.Verify("--roots", scratch["root.pem"], "--threshold", "1");
        Assert.True(output.ExitCode == 0, output.ToString());
    }

    private const string CaConfig = """
        [req]
        distinguished_name = dn
        prompt = no
        [dn]
        CN = openssl test root
        [v3_ca]
        basicConstraints = critical,CA:TRUE
        keyUsage = critical,digitalSignature,keyCertSign
        """;

    private void MakeEd25519Root(string name)
    {
        File.WriteAllText(scratch["ca.cnf"], CaConfig);
        Openssl.Ok(scratch.Dir, "genpkey", "-algorithm", "ed25519", "-out", $"{name}.key");
        Openssl.Ok(scratch.Dir, "req", "-x509", "-new", "-key", $"{name}.key", "-config", "ca.cnf", "-extensions", "v3_ca", "-days", "30", "-out", $"{name}.pem");
    }

    private void MakeLeaf(string name, string root, string? eku, string? digest = null)
    {
        File.WriteAllText(scratch[$"{name}.ext"], "keyUsage = critical,digitalSignature\n" + (eku is null ? "" : $"extendedKeyUsage = {eku}\n"));
        Openssl.Ok(scratch.Dir, "genpkey", "-algorithm", "ed25519", "-out", $"{name}.key");
        Openssl.Ok(scratch.Dir, "req", "-new", "-key", $"{name}.key", "-subj", $"/CN=openssl {name}", "-out", $"{name}.csr");
        Openssl.Ok(scratch.Dir, ["x509", "-req", "-in", $"{name}.csr", "-CA", $"{root}.pem", "-CAkey", $"{root}.key", "-CAcreateserial",
            "-days", "30", "-extfile", $"{name}.ext", "-out", $"{name}.pem", .. (digest is null ? Array.Empty<string>() : new[] { digest })]);
    }

    /// <summary>Our package, with a descriptor written by hand around a signature openssl made.</summary>
    private Package SignWithOpenssl(string leaf)
    {
        string kernel = scratch.RandomFile("vmlinuz", 20_000), initramfs = scratch.RandomFile("initramfs.cpio", 30_000);
        Tabula.Ok("ospkg", "create", "--kernel", kernel, "--initramfs", initramfs, "--out", scratch["os"]);
        Openssl.Ok(scratch.Dir, "dgst", "-sha256", "-binary", "-out", "digest.bin", "os.zip");
        Openssl.Ok(scratch.Dir, "pkeyutl", "-sign", "-inkey", $"{leaf}.key", "-rawin", "-in", "digest.bin", "-out", "sig.bin");
        byte[] signature = File.ReadAllBytes(scratch["sig.bin"]);
        Assert.Equal(64, signature.Length);
        var descriptor = new JsonObject
        {
            ["version"] = 1,
            ["os_pkg_url"] = "os.zip",
            ["certificates"] = new JsonArray(Convert.ToBase64String(Encoding.ASCII.GetBytes(File.ReadAllText(scratch[$"{leaf}.pem"])))),
            ["signatures"] = new JsonArray(Convert.ToBase64String(signature)),
        };
        var package = new Package(scratch["os.zip"], scratch["os.json"]);
        package.WriteDescriptor(descriptor);
        return package;
    }
}

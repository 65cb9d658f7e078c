using System.Security.Cryptography;

namespace Tabula.Cli.Tests;

/// <summary>`tabula keygen root|leaf`, judged by openssl.</summary>
public sealed class KeygenTests : IDisposable
{
    private readonly Scratch scratch = new();

    public void Dispose() => scratch.Dispose();

    private void Root(params string[] extra) => Tabula.Ok(["keygen", "root", "--out", scratch["root"], .. extra]);

    private ProcessOutput Leaf(params string[] extra) =>
        Tabula.Ok(["keygen", "leaf", "--root-key", scratch["root.key"], "--root-cert", scratch["root.pem"], "--out", scratch["leaf"], .. extra]);

    [Theory, InlineData("root"), InlineData("leaf")]
    public void Keygen_writes_the_private_key_with_mode_0600(string kind)
    {
        Root();
        if (kind == "leaf") Leaf();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(scratch[$"{kind}.key"]));
    }

    [Theory, InlineData("root"), InlineData("leaf")]
    public void Keygen_key_is_pkcs8_ed25519_and_certificate_parses_with_openssl(string kind)
    {
        Root();
        if (kind == "leaf") Leaf();
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----", File.ReadAllText(scratch[$"{kind}.key"]));
        Assert.Contains("ED25519 Private-Key", Openssl.Ok(scratch.Dir, "pkey", "-in", $"{kind}.key", "-noout", "-text").Stdout);
        Assert.Contains("Public Key Algorithm: ED25519", Openssl.Ok(scratch.Dir, "x509", "-in", $"{kind}.pem", "-noout", "-text").Stdout);
    }

    [Theory, InlineData("root"), InlineData("leaf")]
    public void Keygen_common_name_is_base64_of_sha256_of_the_raw_public_key(string kind)
    {
        Root();
        if (kind == "leaf") Leaf();
        Openssl.Ok(scratch.Dir, "pkey", "-in", $"{kind}.key", "-pubout", "-outform", "DER", "-out", "pub.der");
        byte[] rawPublicKey = File.ReadAllBytes(scratch["pub.der"])[^32..];
        string expected = Convert.ToBase64String(SHA256.HashData(rawPublicKey));
        string subject = Openssl.Ok(scratch.Dir, "x509", "-in", $"{kind}.pem", "-noout", "-subject", "-nameopt", "multiline").Stdout;
        Assert.Equal($"commonName                = {expected}", subject.Split('\n')[1].Trim());
    }

    [Fact]
    public void Keygen_root_is_a_ca_with_critical_key_usage_for_signing_certificates()
    {
        Root();
        string extensions = Openssl.Ok(scratch.Dir, "x509", "-in", "root.pem", "-noout", "-ext", "keyUsage,basicConstraints,extendedKeyUsage").Stdout;
        Assert.Contains("X509v3 Key Usage: critical\n    Digital Signature, Certificate Sign\n", extensions);
        Assert.Contains("CA:TRUE", extensions);
        Assert.DoesNotContain("Extended Key Usage", extensions);
    }

    [Fact]
    public void Keygen_leaf_has_digital_signature_only_and_no_extended_key_usage()
    {
        Root();
        Leaf();
        string extensions = Openssl.Ok(scratch.Dir, "x509", "-in", "leaf.pem", "-noout", "-ext", "keyUsage,basicConstraints,extendedKeyUsage").Stdout;
        Assert.Contains("X509v3 Key Usage: critical\n    Digital Signature\n", extensions);
        Assert.DoesNotContain("Certificate Sign", extensions);
        Assert.DoesNotContain("CA:TRUE", extensions);
        Assert.DoesNotContain("Extended Key Usage", extensions);
    }

    [Fact]
    public void Openssl_verifies_the_leaf_chain_to_the_root()
    {
        Root();
        Leaf();
        Assert.Equal("leaf.pem: OK", Openssl.Ok(scratch.Dir, "verify", "-CAfile", "root.pem", "leaf.pem").Stdout.Trim());
    }

    [Fact]
    public void Keygen_honours_valid_from_and_valid_until()
    {
        Root("--valid-from", "2030-01-01T00:00:00Z", "--valid-until", "2040-06-30T12:00:00Z");
        Leaf("--valid-from", "2031-02-03T04:05:06Z", "--valid-until", "2032-02-03T04:05:06Z");
        Assert.Equal("notBefore=Jan  1 00:00:00 2030 GMT\nnotAfter=Jun 30 12:00:00 2040 GMT\n",
            Openssl.Ok(scratch.Dir, "x509", "-in", "root.pem", "-noout", "-startdate", "-enddate").Stdout);
        Assert.Equal("notBefore=Feb  3 04:05:06 2031 GMT\nnotAfter=Feb  3 04:05:06 2032 GMT\n",
            Openssl.Ok(scratch.Dir, "x509", "-in", "leaf.pem", "-noout", "-startdate", "-enddate").Stdout);
    }

    [Fact]
    public void Keygen_leaf_expiring_within_30_days_warns_on_stderr_and_a_longer_one_does_not()
    {
        Root();
        string soon = DateTimeOffset.UtcNow.AddDays(10).ToString("yyyy-MM-ddTHH:mm:ssZ");
        var warned = Leaf("--valid-until", soon);
        Assert.Contains("tabula: warning:", warned.Stderr);
        Assert.Contains("within 30 days", warned.Stderr);

        var quiet = Leaf("--force");
        Assert.DoesNotContain("warning", quiet.Stderr);
    }

    [Fact]
    public void Keygen_refuses_to_overwrite_without_force()
    {
        Root();
        string key = File.ReadAllText(scratch["root.key"]), cert = File.ReadAllText(scratch["root.pem"]);

        var refused = Tabula.Run("keygen", "root", "--out", scratch["root"]);
        Assert.True(refused.ExitCode == 2, refused.ToString());
        Assert.StartsWith("tabula: error:", refused.Stderr);
        Assert.Contains("--force", refused.Stderr);
        Assert.Equal(key, File.ReadAllText(scratch["root.key"]));
        Assert.Equal(cert, File.ReadAllText(scratch["root.pem"]));

        Root("--force");
        Assert.NotEqual(key, File.ReadAllText(scratch["root.key"]));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(scratch["root.key"]));
    }
}

using System.Security.Cryptography;
using System.Text;
using Tabula.Packaging;
using Tabula.Packaging.Crypto;

namespace Tabula.Testing.Packages;

/// <summary>A signer: its Ed25519 seed and certificate.</summary>
public sealed record TestSigner(byte[] PrivateKey, Certificate Certificate)
{
    public string CertificatePem => Pem.EncodeCertificate(Certificate.Der);
}

/// <summary>
/// The one test PKI: real keys, certificates and signed OS packages made per test with the production code (no canned
/// bytes), and ST trust policy folders. Used by the Packaging, Provisioning, Boot, Images and QEMU tests.
/// </summary>
public static class SignedPackages
{
    public static TestSigner Root(DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null)
    {
        byte[] key = Ed25519.NewPrivateKey();
        var now = DateTimeOffset.UtcNow;
        byte[] der = CertificateBuilder.CreateRoot(key, notBefore ?? now.AddDays(-1), notAfter ?? now.AddYears(5));
        return new TestSigner(key, Certificate.Parse(der));
    }

    public static TestSigner Leaf(TestSigner root, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null, byte[]? privateKey = null)
    {
        byte[] key = privateKey ?? Ed25519.NewPrivateKey();
        var now = DateTimeOffset.UtcNow;
        byte[] der = CertificateBuilder.CreateLeaf(root.PrivateKey, root.Certificate, Ed25519.PublicKeyOf(key),
            notBefore ?? now.AddDays(-1), notAfter ?? now.AddYears(1));
        return new TestSigner(key, Certificate.Parse(der));
    }

    /// <summary>An archive from our deterministic writer; <paramref name="release"/> and <paramref name="machineClass"/> go
    /// into its manifest (freshness, issue 16; 0 and null: none).</summary>
    public static byte[] Archive(byte[] kernel, byte[] initramfs, string cmdline, string kernelName = "vmlinuz", string initramfsName = "initramfs.cpio.gz",
        long release = 0, string? machineClass = null)
    {
        using var output = new MemoryStream();
        OsPackageArchiveWriter.Write(output, new OsPackageArchiveWriter.Inputs(
            new MemoryStream(kernel), kernelName, new MemoryStream(initramfs), initramfsName, "tabula test OS", cmdline, release, machineClass));
        return output.ToArray();
    }

    /// <summary>A descriptor pointing at <paramref name="url"/>, signed over SHA-256 of <paramref name="archive"/> by each signer.</summary>
    public static byte[] Descriptor(byte[] archive, string url, params TestSigner[] signers)
    {
        byte[] digest = SHA256.HashData(archive);
        var descriptor = Packaging.Descriptor.Unsigned(url);
        foreach (var signer in signers)
            descriptor = descriptor.AddSignature(signer.CertificatePem, Ed25519.Sign(signer.PrivateKey, digest));
        return descriptor.ToJson();
    }

    /// <summary>Writes an ST trust policy folder with the production writer, replacing one already there;
    /// <paramref name="measuredBoot"/> is its <c>tabula_measured_boot</c> (none when null).</summary>
    public static string TrustPolicy(string directory, int threshold, string fetchMethod, IEnumerable<TestSigner> roots, string? tlsRootsPem = null,
        MeasuredBootMode? measuredBoot = null)
    {
        if (Directory.Exists(directory))
            Directory.Delete(directory, recursive: true);
        var method = fetchMethod switch { "network" => FetchMethod.Network, "initramfs" => FetchMethod.Initramfs, _ => throw new ArgumentException(fetchMethod) };
        var tls = tlsRootsPem is null ? null : Certificate.ParsePemBundle(Utf8(tlsRootsPem));
        new TrustPolicyFolder(new Packaging.TrustPolicy(threshold, method) { MeasuredBoot = measuredBoot }, [.. roots.Select(r => r.Certificate)], tls, null).Write(directory);
        return directory;
    }

    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
}

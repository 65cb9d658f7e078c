using System.Security.Cryptography;
using Tabula.Packaging.Crypto;

namespace Tabula.Packaging.Tests;

/// <summary>A signer: its Ed25519 seed and certificate.</summary>
internal sealed record Signer(byte[] PrivateKey, Certificate Certificate)
{
    public string CertificatePem => Pem.EncodeCertificate(Certificate.Der);
}

/// <summary>A real archive (from our writer) and its digest.</summary>
internal sealed record TestArchive(byte[] Bytes)
{
    public byte[] Sha256 { get; } = SHA256.HashData(Bytes);
}

/// <summary>Real keys and certificates, made per test with the production builder (no canned bytes).</summary>
internal static class TestPki
{
    public static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;

    public static Signer Root(DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null)
    {
        byte[] key = Ed25519.NewPrivateKey();
        byte[] der = CertificateBuilder.CreateRoot(key, notBefore ?? Now.AddDays(-1), notAfter ?? Now.AddYears(5));
        return new Signer(key, Certificate.Parse(der));
    }

    public static Signer Leaf(Signer root, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null, byte[]? privateKey = null)
    {
        byte[] key = privateKey ?? Ed25519.NewPrivateKey();
        byte[] der = CertificateBuilder.CreateLeaf(root.PrivateKey, root.Certificate, Ed25519.PublicKeyOf(key),
            notBefore ?? Now.AddDays(-1), notAfter ?? Now.AddYears(1));
        return new Signer(key, Certificate.Parse(der));
    }

    public static TestArchive Archive(int kernelBytes = 4096, string cmdline = "console=ttyS0")
    {
        var kernel = new byte[kernelBytes];
        RandomNumberGenerator.Fill(kernel);
        using var output = new MemoryStream();
        OsPackageArchiveWriter.Write(output, new OsPackageArchiveWriter.Inputs(
            new MemoryStream(kernel), "vmlinuz", new MemoryStream("initramfs"u8.ToArray()), "initramfs.cpio", "test", cmdline));
        return new TestArchive(output.ToArray());
    }

    public static Descriptor Sign(Descriptor descriptor, TestArchive archive, params Signer[] signers)
    {
        foreach (var signer in signers)
            descriptor = descriptor.AddSignature(signer.CertificatePem, Ed25519.Sign(signer.PrivateKey, archive.Sha256));
        return descriptor;
    }

    public static VerificationPolicy Policy(int threshold, params Signer[] roots) =>
        new([.. roots.Select(r => r.Certificate)], threshold);
}

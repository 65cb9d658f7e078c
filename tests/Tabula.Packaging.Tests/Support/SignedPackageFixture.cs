using System.Security.Cryptography;
using Tabula.Packaging.Crypto;
using Tabula.Testing.Packages;

namespace Tabula.Packaging.Tests;

/// <summary>A real archive (from our writer) and its digest.</summary>
internal sealed record TestArchive(byte[] Bytes)
{
    public byte[] Sha256 { get; } = SHA256.HashData(Bytes);
}

/// <summary>The shared test PKI (<see cref="SignedPackages"/>) with one fixed "now" for a whole run, and the verifier's inputs.</summary>
internal static class TestPki
{
    public static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;

    public static Signer Root(DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null) =>
        SignedPackages.Root(notBefore ?? Now.AddDays(-1), notAfter ?? Now.AddYears(5));

    public static Signer Leaf(Signer root, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null, byte[]? privateKey = null) =>
        SignedPackages.Leaf(root, notBefore ?? Now.AddDays(-1), notAfter ?? Now.AddYears(1), privateKey);

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

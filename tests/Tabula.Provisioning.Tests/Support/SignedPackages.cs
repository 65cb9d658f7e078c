using System.Security.Cryptography;
using System.Text;
using Tabula.Packaging;
using Tabula.Packaging.Crypto;

namespace Tabula.Provisioning.Tests.Support;

/// <summary>A signed OS package made with real Ed25519 keys and stmgr-shaped certificates.</summary>
public sealed record SignedPackage(byte[] Archive, byte[] Descriptor)
{
    public string ArchiveSha256 => Convert.ToHexStringLower(SHA256.HashData(Archive));

    public void WriteTo(string directory, string name, out string descriptorPath, out string archivePath)
    {
        descriptorPath = Path.Combine(directory, name + ".json");
        archivePath = Path.Combine(directory, name + ".zip");
        File.WriteAllBytes(descriptorPath, Descriptor);
        File.WriteAllBytes(archivePath, Archive);
    }
}

/// <summary>
/// A root, three signers under it, and a trust policy folder with a threshold of two, as an operator would set
/// them up. Packages are real deterministic ST archives (kernel and initramfs are test bytes).
/// </summary>
public sealed class SignedPackages
{
    readonly byte[] rootKey = Ed25519.NewPrivateKey();
    readonly Certificate root;
    readonly List<(byte[] Key, string Pem)> signers = [];
    readonly (byte[] Key, string Pem) stranger;

    public SignedPackages(int threshold = 2)
    {
        var now = DateTimeOffset.UtcNow;
        byte[] rootDer = CertificateBuilder.CreateRoot(rootKey, now.AddDays(-1), now.AddYears(1));
        root = Certificate.Parse(rootDer);
        RootPem = Pem(rootDer);
        for (int i = 0; i < 3; i++)
            signers.Add(Leaf(rootKey, root, now));
        // A signer under another root: well-formed, but not trusted by the policy.
        byte[] otherRootKey = Ed25519.NewPrivateKey();
        var otherRoot = Certificate.Parse(CertificateBuilder.CreateRoot(otherRootKey, now.AddDays(-1), now.AddYears(1)));
        stranger = Leaf(otherRootKey, otherRoot, now);
        Threshold = threshold;
    }

    public string RootPem { get; }
    public int Threshold { get; }

    public void WriteTrustPolicy(string directory) =>
        new TrustPolicyFolder(new TrustPolicy(Threshold, FetchMethod.Network), Certificate.ParsePemBundle(Encoding.ASCII.GetBytes(RootPem)), null, null)
            .Write(directory);

    /// <summary>A package signed by the first <paramref name="trustedSigners"/> signers (plus, optionally, one
    /// untrusted signer). <paramref name="size"/> bytes of kernel make the archive roughly that large.</summary>
    public SignedPackage Create(int trustedSigners, int size = 4096, bool addStranger = false, string label = "test")
    {
        byte[] kernel = RandomNumberGenerator.GetBytes(size);
        byte[] initramfs = Encoding.ASCII.GetBytes("initramfs " + label);
        var archive = new MemoryStream();
        OsPackageArchiveWriter.Write(archive, new OsPackageArchiveWriter.Inputs(
            new MemoryStream(kernel), "vmlinuz", new MemoryStream(initramfs), "initramfs.cpio", label, "console=ttyS0"));
        byte[] archiveBytes = archive.ToArray();
        byte[] digest = SHA256.HashData(archiveBytes);
        var descriptor = Descriptor.Unsigned("");
        foreach (var (key, pem) in signers.Take(trustedSigners))
            descriptor = descriptor.AddSignature(pem, Ed25519.Sign(key, digest));
        if (addStranger)
            descriptor = descriptor.AddSignature(stranger.Pem, Ed25519.Sign(stranger.Key, digest));
        return new SignedPackage(archiveBytes, descriptor.ToJson());
    }

    static (byte[] Key, string Pem) Leaf(byte[] rootKey, Certificate root, DateTimeOffset now)
    {
        byte[] key = Ed25519.NewPrivateKey();
        byte[] der = CertificateBuilder.CreateLeaf(rootKey, root, Ed25519.PublicKeyOf(key), now.AddDays(-1), now.AddYears(1));
        return (key, Pem(der));
    }

    static string Pem(byte[] der) => new string(PemEncoding.Write("CERTIFICATE", der)) + "\n";
}

using System.Security.Cryptography;
using System.Text;
using Tabula.Packaging;
using Tabula.Testing.Packages;
using Shared = Tabula.Testing.Packages.SignedPackages;

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
/// From the shared test PKI (<see cref="Shared"/>): a root, three signers under it, and a trust policy folder with a threshold of two, as an operator would set
/// them up. Packages are real deterministic ST archives (kernel and initramfs are test bytes).
/// </summary>
public sealed class SignedPackages
{
    readonly List<TestSigner> signers = [];
    readonly TestSigner stranger;

    public SignedPackages(int threshold = 2)
    {
        var now = DateTimeOffset.UtcNow;
        var root = Shared.Root(now.AddDays(-1), now.AddYears(1));
        RootPem = root.CertificatePem;
        for (int i = 0; i < 3; i++)
            signers.Add(Shared.Leaf(root, now.AddDays(-1), now.AddYears(1)));
        // A signer under another root: well-formed, but not trusted by the policy.
        stranger = Shared.Leaf(Shared.Root(now.AddDays(-1), now.AddYears(1)), now.AddDays(-1), now.AddYears(1));
        Threshold = threshold;
    }

    public string RootPem { get; }
    public int Threshold { get; }

    public void WriteTrustPolicy(string directory) =>
        new TrustPolicyFolder(new TrustPolicy(Threshold, FetchMethod.Network), Certificate.ParsePemBundle(Encoding.ASCII.GetBytes(RootPem)), null, null)
            .Write(directory);

    /// <summary>A package signed by the first <paramref name="trustedSigners"/> signers (plus, optionally, one
    /// untrusted signer). <paramref name="size"/> bytes of kernel make the archive roughly that large.</summary>
    public SignedPackage Create(int trustedSigners, int size = 4096, bool addStranger = false, string label = "test", long release = 0)
    {
        byte[] kernel = RandomNumberGenerator.GetBytes(size);
        byte[] initramfs = Encoding.ASCII.GetBytes("initramfs " + label);
        var archive = new MemoryStream();
        OsPackageArchiveWriter.Write(archive, new OsPackageArchiveWriter.Inputs(
            new MemoryStream(kernel), "vmlinuz", new MemoryStream(initramfs), "initramfs.cpio", label, "console=ttyS0",
            release, release > 0 ? "relay" : null));
        byte[] archiveBytes = archive.ToArray();
        TestSigner[] signing = [.. signers.Take(trustedSigners), .. addStranger ? [stranger] : Array.Empty<TestSigner>()];
        return new SignedPackage(archiveBytes, Shared.Descriptor(archiveBytes, "", signing));
    }
}

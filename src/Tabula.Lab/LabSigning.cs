using System.Security.Cryptography;
using Tabula.Packaging;
using Tabula.Packaging.Crypto;

namespace Tabula.Lab;

/// <summary>A signing key and its certificate, as `tabula keygen` writes them (KEY.key PKCS#8 PEM 0600, KEY.pem).</summary>
public sealed record LabSigner(string Name, byte[] PrivateKey, Certificate Certificate)
{
    /// <summary>The certificate as PEM.</summary>
    public string CertificatePem => Pem.EncodeCertificate(Certificate.Der);
}

/// <summary>
/// The lab's signing workstation: a root and three signers (the files `tabula keygen root|leaf` makes), the ST trust
/// policy folders (threshold 2), and the relay package's descriptor signed by two of the three signers and verified
/// as stboot will verify it.
/// </summary>
public static class LabSigning
{
    /// <summary>The number of valid signatures a package needs.</summary>
    public const int Threshold = 2;

    /// <summary>Creates root + signer1..3 under <paramref name="keys"/> (names prefixed with <paramref name="prefix"/>: `lab attack`
    /// makes rogue-root and rogue-signer1..3 this way); returns the root and the signers.</summary>
    public static (LabSigner Root, IReadOnlyList<LabSigner> Signers) CreateKeys(string keys, string prefix = "")
    {
        Directory.CreateDirectory(keys);
        var now = DateTimeOffset.UtcNow;
        byte[] rootKey = Ed25519.NewPrivateKey();
        var root = Write(keys, new LabSigner(prefix + "root", rootKey, Certificate.Parse(CertificateBuilder.CreateRoot(rootKey, now.AddMinutes(-5), now.AddYears(1)))));
        var signers = new List<LabSigner>();
        for (int i = 1; i <= 3; i++)
        {
            byte[] key = Ed25519.NewPrivateKey();
            byte[] der = CertificateBuilder.CreateLeaf(rootKey, root.Certificate, Ed25519.PublicKeyOf(key), now.AddMinutes(-5), now.AddMonths(6));
            signers.Add(Write(keys, new LabSigner($"{prefix}signer{i}", key, Certificate.Parse(der))));
        }
        return (root, signers);
    }

    /// <summary>Reads root and signer1..3 back from <paramref name="keys"/> (what <see cref="CreateKeys"/> wrote).</summary>
    public static (LabSigner Root, IReadOnlyList<LabSigner> Signers) LoadKeys(string keys)
    {
        static LabSigner Read(string keys, string name)
        {
            string key = Path.Combine(keys, name + ".key"), pem = Path.Combine(keys, name + ".pem");
            if (!File.Exists(key) || !File.Exists(pem))
                throw new LabException($"the lab's signing key {key} or its certificate is missing; run `tabula lab up` again");
            return new LabSigner(name, Ed25519Keys.FromPkcs8Pem(File.ReadAllBytes(key)), Certificate.Parse(Pem.ReadSingle(File.ReadAllBytes(pem), "CERTIFICATE")));
        }
        return (Read(keys, "root"), [Read(keys, "signer1"), Read(keys, "signer2"), Read(keys, "signer3")]);
    }

    static LabSigner Write(string keys, LabSigner signer)
    {
        string key = Path.Combine(keys, signer.Name + ".key");
        using (var file = new StreamWriter(new FileStream(key, new FileStreamOptions
               {
                   Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
               })))
            file.Write(Ed25519Keys.ToPkcs8Pem(signer.PrivateKey));
        File.WriteAllText(Path.Combine(keys, signer.Name + ".pem"), signer.CertificatePem);
        return signer;
    }

    /// <summary>Writes an ST trust policy folder with Tabula.Packaging's writer (what `tabula trustpolicy create` does):
    /// the threshold (2 unless told), network fetch, the root, and optionally the TLS roots stboot pins. The folder is the
    /// lab's own, so an old one is replaced. With <paramref name="freshness"/> the folder also carries the controller's boot
    /// ticket key (<paramref name="ticketRoot"/>, raw Ed25519 public key) as ticket_root.pem. <paramref name="measuredBoot"/> is
    /// `tabula_measured_boot` (docs/boot.md "Measured boot"; null: the key is left out).</summary>
    public static string WriteTrustPolicy(string directory, LabSigner root, string? tlsRootsPem, int threshold = Threshold,
        FreshnessPolicy? freshness = null, byte[]? ticketRoot = null, MeasuredBootMode? measuredBoot = null)
    {
        if ((freshness is null) != (ticketRoot is null))
            throw new ArgumentException("a freshness policy and its ticket key come together");
        if (Directory.Exists(directory))
            Directory.Delete(directory, recursive: true);
        var tls = tlsRootsPem is null ? null : Certificate.ParsePemBundle(System.Text.Encoding.UTF8.GetBytes(tlsRootsPem));
        new TrustPolicyFolder(new TrustPolicy(threshold, FetchMethod.Network) { Freshness = freshness, MeasuredBoot = measuredBoot }, [root.Certificate], tls, null)
        {
            TicketRoot = ticketRoot,
        }.Write(directory);
        return directory;
    }

    /// <summary>The descriptor of <paramref name="archive"/> signed by <paramref name="signers"/> (what `tabula ospkg sign` adds).</summary>
    public static byte[] Sign(byte[] archive, IEnumerable<LabSigner> signers)
    {
        byte[] digest = SHA256.HashData(archive);
        var descriptor = Descriptor.Unsigned("");
        foreach (var signer in signers)
            descriptor = descriptor.AddSignature(signer.CertificatePem, Ed25519.Sign(signer.PrivateKey, digest));
        return descriptor.ToJson();
    }

    /// <summary>Verifies as stboot does (`tabula ospkg verify --threshold 2`).</summary>
    public static VerifyResult Verify(byte[] descriptor, byte[] archive, LabSigner root) =>
        PackageVerifier.Verify(Descriptor.Parse(descriptor), SHA256.HashData(archive),
            new VerificationPolicy([root.Certificate], Threshold), DateTimeOffset.UtcNow);
}

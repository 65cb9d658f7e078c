using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Tabula.Qemu;

/// <summary>
/// The lab's TPM "manufacturer": a CA that issues the EK and platform certificates of every swtpm made with
/// <see cref="Swtpm.Manufacture"/>, as a TPM vendor's CA issues those of real TPMs. An RSA-2048 root made here (swtpm's
/// swtpm_localca signs with it; it takes a PKCS#8 PEM key), kept in its own directory: never the system-wide
/// /var/lib/swtpm-localca. The certificate is what a controller or a customer configures as a manufacturer root.
/// </summary>
public sealed class TpmManufacturer
{
    /// <summary>The CA certificate's file name in its directory.</summary>
    public const string CertificateFile = "tpm-manufacturer-ca.pem";

    /// <summary>The CA key's file name in its directory (0600).</summary>
    public const string KeyFile = "tpm-manufacturer-ca.key";

    TpmManufacturer(string directory, string certificatePem)
    {
        Directory = directory;
        CertificatePem = certificatePem;
    }

    /// <summary>The directory holding the CA's files.</summary>
    public string Directory { get; }

    /// <summary>The CA certificate, PEM.</summary>
    public string CertificatePem { get; }

    /// <summary>The CA certificate's path.</summary>
    public string CertificatePath => Path.Combine(Directory, CertificateFile);

    /// <summary>The CA key's path.</summary>
    public string KeyPath => Path.Combine(Directory, KeyFile);

    /// <summary>The CA in <paramref name="directory"/>, made there first if it has none.</summary>
    public static TpmManufacturer OpenOrCreate(string directory, string name = "Tabula lab TPM manufacturer CA")
    {
        System.IO.Directory.CreateDirectory(directory);
        string certificate = Path.Combine(directory, CertificateFile), key = Path.Combine(directory, KeyFile);
        if (File.Exists(certificate) && File.Exists(key))
            return new TpmManufacturer(directory, File.ReadAllText(certificate));
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest(new X500DistinguishedName("CN=" + name + ", O=Tabula lab"), rsa, HashAlgorithmName.SHA256,
            RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        using var cert = request.CreateSelfSigned(now.AddDays(-1), now.AddYears(20));
        string keyPem = rsa.ExportPkcs8PrivateKeyPem();
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(key, options))
        using (var writer = new StreamWriter(stream))
            writer.Write(keyPem + "\n");
        string pem = cert.ExportCertificatePem() + "\n";
        File.WriteAllText(certificate, pem);
        return new TpmManufacturer(directory, pem);
    }
}

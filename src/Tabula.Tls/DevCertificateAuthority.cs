using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Tabula.Tls;

/// <summary>The files written by <see cref="DevCertificateAuthority.Init"/>.</summary>
public sealed record DevTlsFiles(string CaCertificate, string CaKey, string ServerCertificate, string ServerKey);

/// <summary>
/// A private CA and a server certificate for the provisioning server (ECDSA P-256, which Go's TLS stack in
/// stboot speaks). The CA certificate is what a machine's trust policy pins as <c>tls_roots.pem</c> (threat
/// checklist #12): integrity never depends on it, it keeps the package list private and the path honest.
/// The fleet controller uses the same kind of files; the relay OS package pins its CA as fleet-ca.pem.
/// </summary>
public static class DevCertificateAuthority
{
    /// <summary>The file names inside the directory given to <see cref="Init"/>.</summary>
    public const string CaCertificateFile = "ca.pem";
    /// <inheritdoc cref="CaCertificateFile"/>
    public const string CaKeyFile = "ca.key";
    /// <inheritdoc cref="CaCertificateFile"/>
    public const string ServerCertificateFile = "server.pem";
    /// <inheritdoc cref="CaCertificateFile"/>
    public const string ServerKeyFile = "server.key";

    /// <summary>The CA's common name unless given: what the provisioning server has always used.</summary>
    public const string DefaultCaName = "Tabula provisioning CA";

    /// <summary>Creates <paramref name="directory"/>/{ca,server}.{pem,key}. Keys are written mode 0600. Refuses to
    /// overwrite an existing CA key unless <paramref name="force"/>. The fleet controller uses the same files
    /// (`tabula fleet tls init`, with its own <paramref name="caName"/>).</summary>
    public static DevTlsFiles Init(string directory, IReadOnlyList<string> hostNames, DateTimeOffset now,
        TimeSpan caValidity, TimeSpan serverValidity, bool force = false, string caName = DefaultCaName)
    {
        Directory.CreateDirectory(directory);
        var files = new DevTlsFiles(Path.Combine(directory, CaCertificateFile), Path.Combine(directory, CaKeyFile),
            Path.Combine(directory, ServerCertificateFile), Path.Combine(directory, ServerKeyFile));
        if (!force && File.Exists(files.CaKey))
            throw new IOException($"{files.CaKey} exists; pass --force to replace the CA (machines pinning it will refuse the new one)");

        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caSubject = new X500DistinguishedNameBuilder();
        caSubject.AddCommonName(caName);
        var caRequest = new CertificateRequest(caSubject.Build(), caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        var caSki = new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false);
        caRequest.CertificateExtensions.Add(caSki);
        using var ca = caRequest.CreateSelfSigned(now.AddMinutes(-5), now + caValidity);

        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var serverRequest = new CertificateRequest($"CN={hostNames.FirstOrDefault() ?? "localhost"}", serverKey,
            HashAlgorithmName.SHA256);
        serverRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        serverRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1", "serverAuth")], false));
        var san = new SubjectAlternativeNameBuilder();
        foreach (string name in hostNames.Append("localhost").Distinct(StringComparer.OrdinalIgnoreCase))
        {
            if (IPAddress.TryParse(name, out var ip))
                san.AddIpAddress(ip);
            else
                san.AddDnsName(name);
        }
        san.AddIpAddress(IPAddress.Loopback);
        san.AddIpAddress(IPAddress.IPv6Loopback);
        serverRequest.CertificateExtensions.Add(san.Build());
        serverRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromSubjectKeyIdentifier(caSki));
        serverRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(serverRequest.PublicKey, false));
        DateTimeOffset serverUntil = now + serverValidity < ca.NotAfter ? now + serverValidity : ca.NotAfter;
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using var server = serverRequest.Create(ca, now.AddMinutes(-5), serverUntil, serial);

        WriteSecret(files.CaKey, caKey.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(files.CaCertificate, ca.ExportCertificatePem() + "\n");
        WriteSecret(files.ServerKey, serverKey.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(files.ServerCertificate, server.ExportCertificatePem() + "\n");
        return files;
    }

    static void WriteSecret(string path, string pem)
    {
        File.Delete(path);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using var stream = new FileStream(path, options);
        using var writer = new StreamWriter(stream);
        writer.Write(pem);
        writer.Write('\n');
    }
}

using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Tabula.Fleet.Security;

/// <summary>
/// The controller's attestation CA (issue 19): an ECDSA P-256 key and its self-signed certificate, in one PEM file (mode
/// 0600, outside the database, like the <see cref="TicketKey"/>), made at first start. After a relay passes every attestation
/// step, the controller certifies its AK with it: the AK certificate names the machine, the measured package digest and its
/// release, and is published in the relay list, so a client can choose attested relays before connecting (and check the AK
/// itself in the tunnel). The CA certificate is public: <c>GET /app/v1/attestation-ca</c> and
/// <c>tabula fleet attestation-ca</c>. It certifies nothing else: it is neither a TLS, package signing nor ticket key.
/// </summary>
public sealed class AttestationCa : IDisposable
{
    /// <summary>The file's largest accepted size (a key and a certificate are under 2 KB; arbitrary limit).</summary>
    public const int MaxFileBytes = 16 * 1024;

    /// <summary>How long an AK certificate is valid: a relay re-enrolls at every boot and gets a new AK and certificate.</summary>
    public static readonly TimeSpan AkCertificateLifetime = TimeSpan.FromDays(30);

    private readonly ECDsa key;

    private AttestationCa(ECDsa key, X509Certificate2 certificate, string path)
    {
        this.key = key;
        Certificate = certificate;
        Path = path;
    }

    /// <summary>The CA certificate (public).</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The CA certificate, PEM.</summary>
    public string CertificatePem => Certificate.ExportCertificatePem() + "\n";

    /// <summary>Where the key and certificate are stored.</summary>
    public string Path { get; }

    /// <summary>
    /// An AK certificate: <paramref name="akKey"/> certified for <paramref name="machineId"/>, naming the measured package and
    /// release as subjectAltName URIs <c>urn:tabula:package:sha256:HEX</c> and <c>urn:tabula:release:N</c>. DER.
    /// </summary>
    public byte[] IssueAkCertificate(PublicKey akKey, string machineId, string packageDigest, long release, DateTimeOffset now)
    {
        var request = new CertificateRequest(new X500DistinguishedName($"CN={machineId}, OU=Attestation key, O=Tabula relay"), akKey,
            HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        var names = new SubjectAlternativeNameBuilder();
        names.AddUri(new Uri("urn:tabula:package:sha256:" + packageDigest));
        names.AddUri(new Uri("urn:tabula:release:" + release.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, true, false));
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        var notAfter = now + AkCertificateLifetime;
        if (notAfter > Certificate.NotAfter) notAfter = Certificate.NotAfter;
        using var issued = request.Create(Certificate.SubjectName, X509SignatureGenerator.CreateForECDsa(key), now.AddMinutes(-5), notAfter, serial);
        return issued.RawData;
    }

    /// <summary>
    /// Reads the CA at <paramref name="path"/>, or makes one there (created exclusively with mode 0600). Refuses a file that
    /// group or others may read. Throws <see cref="ArgumentException"/> with the reason (the CLI's exit 2).
    /// </summary>
    public static AttestationCa LoadOrCreate(string path, string name = "Tabula fleet attestation CA")
    {
        string full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            if (System.IO.Path.GetDirectoryName(full) is { } directory) Directory.CreateDirectory(directory);
            using var made = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest(new X500DistinguishedName($"CN={name}"), made, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
            request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
            var now = DateTimeOffset.UtcNow;
            using var certificate = request.CreateSelfSigned(now.AddDays(-1), now.AddYears(10));
            string pem = made.ExportPkcs8PrivateKeyPem() + "\n" + certificate.ExportCertificatePem() + "\n";
            try
            {
                var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
                if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                using var file = new FileStream(full, options);
                file.Write(Encoding.ASCII.GetBytes(pem));
                file.Flush(flushToDisk: true);
            }
            catch (IOException) when (File.Exists(full)) { /* another instance made it first: read theirs */ }
        }
        return Load(full);
    }

    /// <summary>Reads an existing CA file; see <see cref="LoadOrCreate"/>.</summary>
    public static AttestationCa Load(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full)) throw new ArgumentException($"the attestation CA {full} does not exist");
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(full) & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite
                | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
            throw new ArgumentException($"the attestation CA {full} is readable or writable by group or others; chmod 600 it");
        if (new FileInfo(full).Length > MaxFileBytes) throw new ArgumentException($"the attestation CA {full} is over {MaxFileBytes} bytes");
        string pem = File.ReadAllText(full);
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            var certificate = X509Certificate2.CreateFromPem(pem);
            using var certificateKey = certificate.GetECDsaPublicKey();
            if (certificateKey is null || !certificateKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(key.ExportSubjectPublicKeyInfo()))
                throw new ArgumentException($"the attestation CA {full}: the certificate is not the key's");
            return new AttestationCa(key, certificate, full);
        }
        catch (CryptographicException e)
        {
            key.Dispose();
            throw new ArgumentException($"the attestation CA {full} is not a PKCS#8 ECDSA key with its certificate (PEM): {e.Message}", e);
        }
        catch { key.Dispose(); throw; }
    }

    /// <summary>Where the CA lives when <see cref="FleetOptions.AttestationCaPath"/> is not set: <c>attestation-ca.pem</c> next to a
    /// SQLite database. A PostgreSQL fleet must name it (the same file on every instance).</summary>
    public static string DefaultPath(string database)
    {
        if (database.StartsWith("postgres:", StringComparison.Ordinal))
            throw new ArgumentException("with a PostgreSQL database, pass --attestation-ca PATH (the same file on every instance)");
        string file = database.StartsWith("sqlite:", StringComparison.Ordinal) ? database["sqlite:".Length..] : database;
        string directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(file)) ?? ".";
        return System.IO.Path.Combine(directory, "attestation-ca.pem");
    }

    public void Dispose()
    {
        key.Dispose();
        Certificate.Dispose();
    }
}

using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Tabula.Packaging;

namespace Tabula.Tls;

/// <summary>
/// The one TLS server validation of the repository: trust only the given root certificates (stboot's tls_roots.pem,
/// the relay's pinned fleet CA, a staff tool's --ca; threat checklist #12). No system store (a RAM OS has none, and
/// must not), no revocation fetches, no certificate downloads, the chain built to exactly those roots at the given
/// time, and every other error the TLS layer reports (the host name above all) is fatal.
/// </summary>
public sealed class PinnedTlsRoots
{
    readonly X509Certificate2Collection roots = [];
    readonly TimeProvider time;

    /// <summary>Trusts exactly <paramref name="pinnedRoots"/>, checking validity at <paramref name="time"/>'s now.
    /// No roots trusts nothing: every handshake is refused.</summary>
    public PinnedTlsRoots(IReadOnlyList<Certificate> pinnedRoots, TimeProvider time)
    {
        this.time = time;
        foreach (var root in pinnedRoots)
            roots.Add(X509CertificateLoader.LoadCertificate(root.Der));
    }

    /// <summary>Reads a PEM bundle of roots (at most <see cref="Limits.MaxPemBytes"/>; Packaging's parser and its
    /// <see cref="PackageFormatException"/> for anything else).</summary>
    public static PinnedTlsRoots LoadPemFile(string path, TimeProvider time)
    {
        try { return new(Certificate.ParsePemBundle(TrustPolicyFolder.ReadLimited(path, Limits.MaxPemBytes)), time); }
        catch (PackageFormatException e) { throw e.WithContext(path); }
    }

    /// <summary>How many roots are pinned.</summary>
    public int Count => roots.Count;

    /// <summary>Why the last handshake was refused, for the console (the HTTP layer only says "authentication failed").</summary>
    public string? LastRefusal { get; private set; }

    /// <summary>A <see cref="RemoteCertificateValidationCallback"/>: true when the server's chain ends at a pinned root
    /// and the TLS layer found nothing else wrong.</summary>
    public bool Validate(X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
            return Refuse("server sent no certificate");
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
            return Refuse("server certificate does not name the host of the URL");
        if ((errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != 0)
            return Refuse($"TLS reported {errors}");
        // The runtime's chain errors are against the system store, which we never trust: build our own chain.
        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.VerificationTime = time.GetUtcNow().UtcDateTime;
        chain.ChainPolicy.VerificationTimeIgnored = false;
        if (presented is not null)
        {
            // Intermediates the server sent may help build the chain; they are never trusted themselves.
            chain.ChainPolicy.ExtraStore.AddRange(presented.ChainPolicy.ExtraStore);
            foreach (var element in presented.ChainElements)
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
        }
        if (chain.Build(leaf))
        {
            LastRefusal = null;
            return true;
        }
        return Refuse("server certificate does not chain to the pinned roots: "
            + string.Join(", ", chain.ChainStatus.Select(s => s.Status.ToString()).Distinct()));
    }

    bool Refuse(string why)
    {
        LastRefusal = why;
        return false;
    }
}

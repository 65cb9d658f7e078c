using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Tabula.Packaging;

/// <summary>
/// TLS server validation that trusts only the given root certificates (stboot's tls_roots.pem, the relay's pinned
/// fleet CA; threat checklist #12): no system store (a RAM OS has none, and must not), no revocation fetches, the
/// chain built to exactly those roots at the given time, the host name checked by the TLS layer.
/// </summary>
public sealed class PinnedTlsRoots
{
    readonly X509Certificate2Collection roots = [];
    readonly TimeProvider time;

    /// <summary>Trusts exactly <paramref name="pinnedRoots"/>, checking validity at <paramref name="time"/>'s now.</summary>
    public PinnedTlsRoots(IReadOnlyList<Certificate> pinnedRoots, TimeProvider time)
    {
        this.time = time;
        foreach (var root in pinnedRoots)
            roots.Add(X509CertificateLoader.LoadCertificate(root.Der));
    }

    /// <summary>Why the last handshake was refused, for the console (the HTTP layer only says "authentication failed").</summary>
    public string? LastRefusal { get; private set; }

    /// <summary>A <see cref="RemoteCertificateValidationCallback"/>: true when the server's chain ends at a pinned root.</summary>
    public bool Validate(X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors)
    {
        if (certificate is null)
        {
            LastRefusal = "server sent no certificate";
            return false;
        }
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            LastRefusal = "server certificate does not name the host of the URL";
            return false;
        }
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
            chain.ChainPolicy.ExtraStore.AddRange(presented.ChainPolicy.ExtraStore);
            foreach (var element in presented.ChainElements)
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
        }
        if (chain.Build(leaf))
        {
            LastRefusal = null;
            return true;
        }
        LastRefusal = "server certificate does not chain to the pinned roots: "
            + string.Join(", ", chain.ChainStatus.Select(s => s.Status.ToString()).Distinct());
        return false;
    }
}

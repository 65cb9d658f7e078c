using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Tabula.Packaging;

namespace Tabula.Boot.Fetch;

/// <summary>
/// HTTPS that trusts only the certificates of tls_roots.pem (formats reference §2; threat checklist #12): no system
/// store (there is none in the initramfs, and there must not be one), no revocation fetches, chain built by the
/// runtime to exactly those roots at the given time, host name checked by the TLS layer.
/// </summary>
internal sealed class PinnedTls
{
    readonly X509Certificate2Collection roots = [];
    readonly TimeProvider time;

    public PinnedTls(IReadOnlyList<Certificate> tlsRoots, TimeProvider time)
    {
        this.time = time;
        foreach (var root in tlsRoots)
            roots.Add(X509CertificateLoader.LoadCertificate(root.Der));
    }

    /// <summary>Why the last handshake was refused, for the console (the HTTP layer only says "authentication failed").</summary>
    public string? LastRefusal { get; private set; }

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
        LastRefusal = "server certificate does not chain to tls_roots.pem: "
            + string.Join(", ", chain.ChainStatus.Select(s => s.Status.ToString()).Distinct());
        return false;
    }

    /// <summary>The HTTP handler stboot uses: upstream's timeouts, no proxy, no cookies, no decompression.</summary>
    public static SocketsHttpHandler CreateHandler(PinnedTls? tls) => new()
    {
        ConnectTimeout = BootLimits.ConnectTimeout,
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(90),
        UseProxy = false,
        UseCookies = false,
        AllowAutoRedirect = true,
        MaxAutomaticRedirections = 5,
        AutomaticDecompression = System.Net.DecompressionMethods.None,
        SslOptions = new SslClientAuthenticationOptions
        {
            // Without tls_roots.pem every HTTPS handshake fails: plain http:// still works (integrity is the signatures').
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) => tls?.Validate(certificate, chain, errors) ?? false,
        },
    };
}

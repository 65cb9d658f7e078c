using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Tabula.Packaging;

namespace Tabula.Boot.Fetch;

/// <summary>
/// HTTPS that trusts only the certificates of tls_roots.pem (formats reference §2; threat checklist #12): no system
/// store (there is none in the initramfs, and there must not be one), no revocation fetches, chain built by the
/// runtime to exactly those roots at the given time, host name checked by the TLS layer.
/// </summary>
internal sealed class PinnedTls(IReadOnlyList<Certificate> tlsRoots, TimeProvider time)
{
    readonly PinnedTlsRoots roots = new(tlsRoots, time);

    /// <summary>Why the last handshake was refused, for the console (the HTTP layer only says "authentication failed").</summary>
    public string? LastRefusal => roots.LastRefusal?.Replace("the pinned roots", "tls_roots.pem", StringComparison.Ordinal);

    public bool Validate(X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors) =>
        roots.Validate(certificate, presented, errors);

    /// <summary>Which AEAD the handshake offers first (null: the runtime's default offer).</summary>
    public AeadPreference? Aead { get; init; }

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
            CipherSuitesPolicy = OperatingSystem.IsWindows() ? null : tls?.Aead?.Policy(),
        },
    };
}

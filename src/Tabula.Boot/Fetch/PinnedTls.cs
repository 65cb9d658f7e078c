using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Tabula.Packaging;
using Tabula.Tls;

namespace Tabula.Boot.Fetch;

/// <summary>
/// stboot's HTTPS: Tabula.Tls's one pinning policy over the certificates of tls_roots.pem (formats reference §2;
/// threat checklist #12), plus what only stboot wants: the refusal worded for its console, the measured AEAD order,
/// and upstream's timeouts and redirects on the handler.
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

    /// <summary>The HTTP handler stboot uses: upstream's timeouts, no proxy, no cookies, no decompression. Without
    /// tls_roots.pem it pins no root, so every HTTPS handshake fails: plain http:// still works (integrity is the
    /// signatures').</summary>
    public static SocketsHttpHandler CreateHandler(PinnedTls? tls)
    {
        var handler = PinnedHttp.Handler(tls?.roots ?? new PinnedTlsRoots([], TimeProvider.System));
        handler.ConnectTimeout = BootLimits.ConnectTimeout;
        handler.PooledConnectionIdleTimeout = TimeSpan.FromSeconds(90);
        handler.AllowAutoRedirect = true;
        handler.MaxAutomaticRedirections = 5;
        handler.SslOptions.CipherSuitesPolicy = OperatingSystem.IsWindows() ? null : tls?.Aead?.Policy();
        return handler;
    }
}

using System.Net;
using System.Net.Http.Headers;

namespace Tabula.Tls;

/// <summary>
/// HTTP clients to our own servers (provisioning, fleet controller) that trust only <see cref="PinnedTlsRoots"/>:
/// no proxy (a pinned connection goes where the URL says), no cookies, no decompression. Callers that need more
/// (stboot's timeouts and cipher order, the relay's HTTP/2 pings, a connect callback into a namespace) set it on the
/// handler they get.
/// </summary>
public static class PinnedHttp
{
    /// <summary>A handler whose every HTTPS handshake goes through <paramref name="pinned"/>.</summary>
    public static SocketsHttpHandler Handler(PinnedTlsRoots pinned) => new()
    {
        UseProxy = false,
        UseCookies = false,
        AutomaticDecompression = DecompressionMethods.None,
        SslOptions = { RemoteCertificateValidationCallback = (_, certificate, chain, errors) => pinned.Validate(certificate, chain, errors) },
    };

    /// <summary>A client for <paramref name="baseAddress"/> over <see cref="Handler"/>; with
    /// <paramref name="authorization"/>, every request carries it.</summary>
    public static HttpClient Client(Uri baseAddress, PinnedTlsRoots pinned, TimeSpan timeout,
        AuthenticationHeaderValue? authorization = null, Action<SocketsHttpHandler>? configure = null)
    {
        var handler = Handler(pinned);
        configure?.Invoke(handler);
        var client = new HttpClient(handler) { BaseAddress = baseAddress, Timeout = timeout };
        if (authorization is not null)
            client.DefaultRequestHeaders.Authorization = authorization;
        return client;
    }
}

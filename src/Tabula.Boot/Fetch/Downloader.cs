using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Text;
using Tabula.Packaging;

namespace Tabula.Boot.Fetch;

/// <summary>
/// A body written to its destination: its length and SHA-256 (computed while copying: hashed once), and how long the
/// successful attempt took from sending the request to the last byte (for the timeline).
/// </summary>
internal sealed record Downloaded(long Length, Sha256Digest Sha256, TimeSpan Took);

/// <summary>
/// GETs one object with upstream's retry rule (formats reference §5 step 3: N attempts, a pause between them) and
/// our bounds: 200 only, non-empty, at most <c>cap</c> bytes (a larger Content-Length is refused before the body),
/// no byte for <see cref="BootLimits.ReadIdleTimeout"/> ends the attempt, the round's deadline ends all. The body is
/// streamed into the destination while hashing; a retry truncates the destination first. URL userinfo becomes
/// HTTP Basic authentication (upstream) and never reaches the console.
/// </summary>
internal sealed class Downloader(HttpMessageInvoker http, BootOptions options, BootLog log, Action<TimeSpan> sleep, PinnedTls? tls)
{
    public (Downloaded? Result, BootFailure? Failure) Get(string what, Uri url, Stream destination, long cap, DateTimeOffset deadline,
        TimeProvider time)
    {
        BootFailure? failure = null;
        for (int attempt = 1; attempt <= options.AttemptsPerObject; attempt++)
        {
            if (time.GetUtcNow() >= deadline)
                return (null, Fail(what, url, FailureReason.Timeout, "the round's download deadline passed"));
            destination.SetLength(0);
            destination.Position = 0;
            (var result, failure) = TryOnce(what, url, destination, cap, deadline - time.GetUtcNow());
            if (result is not null)
                return (result, null);
            if (failure!.Reason is FailureReason.TooLarge or FailureReason.TlsUntrusted || attempt == options.AttemptsPerObject)
                break;
            log.AttemptFailed(what, Urls.Redact(url), attempt, options.AttemptsPerObject, failure);
            sleep(options.AttemptWait);
        }
        return (null, failure);
    }

    (Downloaded?, BootFailure?) TryOnce(string what, Uri url, Stream destination, long cap, TimeSpan remaining)
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        using var request = new HttpRequestMessage(HttpMethod.Get, StripUserInfo(url));
        if (url.UserInfo.Length > 0)
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
                Convert.ToBase64String(Encoding.UTF8.GetBytes(Uri.UnescapeDataString(url.UserInfo))));
        using var overall = new CancellationTokenSource(remaining);
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(overall.Token);
        idle.CancelAfter(BootLimits.ReadIdleTimeout);
        try
        {
            using var response = http.SendAsync(request, idle.Token).GetAwaiter().GetResult();
            if (response.StatusCode != HttpStatusCode.OK)
                return (null, Fail(what, url, FailureReason.HttpStatus, $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}"));
            if (response.Content.Headers.ContentLength is long declared && declared > cap)
                return (null, Fail(what, url, FailureReason.TooLarge, $"Content-Length {declared} is over the {cap}-byte cap"));
            using var body = response.Content.ReadAsStream(idle.Token);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
            long total = 0;
            try
            {
                while (true)
                {
                    idle.CancelAfter(BootLimits.ReadIdleTimeout);
                    int n = body.ReadAsync(buffer, idle.Token).AsTask().GetAwaiter().GetResult();
                    if (n == 0)
                        break;
                    total += n;
                    if (total > cap)
                        return (null, Fail(what, url, FailureReason.TooLarge, $"body is over the {cap}-byte cap"));
                    hash.AppendData(buffer, 0, n);
                    destination.Write(buffer, 0, n);
                }
            }
            finally { ArrayPool<byte>.Shared.Return(buffer); }
            if (total == 0)
                return (null, Fail(what, url, FailureReason.Empty, "HTTP 200 with an empty body"));
            destination.Flush();
            return (new Downloaded(total, Sha256Digest.FromBytes(hash.GetHashAndReset()), System.Diagnostics.Stopwatch.GetElapsedTime(started)), null);
        }
        catch (OperationCanceledException)
        {
            return (null, Fail(what, url, FailureReason.Timeout, overall.IsCancellationRequested
                ? "the round's download deadline passed" : $"no data for {BootLimits.ReadIdleTimeout.TotalSeconds:0}s"));
        }
        catch (HttpRequestException e)
        {
            return (null, Classify(what, url, e));
        }
        catch (IOException e)
        {
            return (null, Fail(what, url, FailureReason.ConnectionFailed, $"connection broke: {Innermost(e)}"));
        }
    }

    BootFailure Classify(string what, Uri url, HttpRequestException e)
    {
        if (e.InnerException is AuthenticationException || e.HttpRequestError == HttpRequestError.SecureConnectionError)
            return Fail(what, url, FailureReason.TlsUntrusted, tls?.LastRefusal ?? (tls is null
                ? "https without tls_roots.pem in the trust policy" : $"TLS handshake failed: {Innermost(e)}"));
        if (e.InnerException is SocketException { SocketErrorCode: SocketError.TimedOut } || e.InnerException is TimeoutException)
            return Fail(what, url, FailureReason.Timeout, $"connect: {Innermost(e)}");
        return Fail(what, url, FailureReason.ConnectionFailed, Innermost(e));
    }

    static string Innermost(Exception e)
    {
        while (e.InnerException is not null)
            e = e.InnerException;
        return e is SocketException s ? s.SocketErrorCode.ToString() : e.Message;
    }

    static Uri StripUserInfo(Uri url) => url.UserInfo.Length == 0 ? url : new UriBuilder(url) { UserName = "", Password = "" }.Uri;

    static BootFailure Fail(string what, Uri url, FailureReason reason, string detail) =>
        new("fetch", reason, $"{what}: {detail}", Urls.Redact(url));
}

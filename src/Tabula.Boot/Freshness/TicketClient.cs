using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Authentication;
using Tabula.Boot.Fetch;
using Tabula.Packaging;

namespace Tabula.Boot.Freshness;

/// <summary>
/// POSTs a ticket request to the trust policy's ticket_url over stboot's one HTTP client (the same pinned TLS as the
/// package fetch: tls_roots.pem) and reads the answer with a cap: 200 only, at most <see cref="Limits.MaxBootTicketBytes"/>
/// (a larger Content-Length is refused before the body), <see cref="BootLimits.TicketTimeout"/> per attempt,
/// <see cref="BootLimits.TicketAttempts"/> attempts <see cref="BootOptions.AttemptWait"/> apart. Never throws for
/// anything the network does: the answer is the ticket bytes or one line saying why there are none.
/// </summary>
internal sealed class TicketClient(HttpMessageInvoker http, BootOptions options, Action<TimeSpan> sleep, PinnedTls? tls)
{
    public (byte[]? Ticket, string? Unavailable) Post(Uri url, byte[] requestJson)
    {
        string? why = null;
        int attempts = Math.Min(BootLimits.TicketAttempts, options.AttemptsPerObject);
        for (int attempt = 1; attempt <= attempts; attempt++)
        {
            (byte[]? ticket, why, bool retry) = TryOnce(url, requestJson);
            if (ticket is not null)
                return (ticket, null);
            if (!retry)
                break;
            if (attempt < attempts)
                sleep(options.AttemptWait);
        }
        return (null, why);
    }

    (byte[]?, string?, bool Retry) TryOnce(Uri url, byte[] requestJson)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(requestJson) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var timeout = new CancellationTokenSource(BootLimits.TicketTimeout);
        try
        {
            using var response = http.SendAsync(request, timeout.Token).GetAwaiter().GetResult();
            if (response.StatusCode != HttpStatusCode.OK)
                return (null, $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}", (int)response.StatusCode >= 500);
            if (response.Content.Headers.ContentLength is long declared && declared > Limits.MaxBootTicketBytes)
                return (null, $"Content-Length {declared} is over the {Limits.MaxBootTicketBytes}-byte cap", false);
            using var body = response.Content.ReadAsStream(timeout.Token);
            byte[] buffer = new byte[Limits.MaxBootTicketBytes + 1];
            int total = 0, n;
            while (total < buffer.Length && (n = body.ReadAsync(buffer.AsMemory(total), timeout.Token).AsTask().GetAwaiter().GetResult()) > 0)
                total += n;
            if (total > Limits.MaxBootTicketBytes)
                return (null, $"body is over the {Limits.MaxBootTicketBytes}-byte cap", false);
            if (total == 0)
                return (null, "HTTP 200 with an empty body", false);
            return (buffer[..total], null, false);
        }
        catch (OperationCanceledException)
        {
            return (null, $"no answer within {BootLimits.TicketTimeout.TotalSeconds:0}s", true);
        }
        catch (HttpRequestException e)
        {
            if (e.InnerException is AuthenticationException || e.HttpRequestError == HttpRequestError.SecureConnectionError)
                return (null, tls?.LastRefusal ?? (tls is null ? "https without tls_roots.pem in the trust policy" : $"TLS handshake failed: {Innermost(e)}"), false);
            return (null, $"connection failed: {Innermost(e)}", true);
        }
        catch (IOException e)
        {
            return (null, $"connection broke: {Innermost(e)}", true);
        }
    }

    static string Innermost(Exception e)
    {
        while (e.InnerException is not null)
            e = e.InnerException;
        return e is SocketException s ? s.SocketErrorCode.ToString() : e.Message;
    }
}

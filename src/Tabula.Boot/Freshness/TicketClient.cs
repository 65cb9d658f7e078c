using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Authentication;
using Tabula.Boot.Fetch;
using Tabula.Packaging;

namespace Tabula.Boot.Freshness;

/// <summary>
/// What the ticket URL gave: the ticket's bytes (not parsed yet: <see cref="FreshnessDecision"/> does); or an answer that
/// cannot be a ticket (HTTP 200 with a body over the cap or empty: <see cref="NotATicket"/>, refused as ticket-malformed like
/// any bad ticket, under an optional policy too, and not asked again); or no answer (<see cref="Unavailable"/>: connection,
/// TLS, timeout, an HTTP error status: ticket-unavailable).
/// </summary>
internal sealed record TicketAnswer(byte[]? Ticket, string? Unavailable, BootTicketException? NotATicket = null);

/// <summary>
/// POSTs a ticket request to the trust policy's ticket_url over stboot's one HTTP client (the same pinned TLS as the
/// package fetch: tls_roots.pem) and reads the answer with a cap: 200 only, at most <see cref="Limits.MaxBootTicketBytes"/>
/// (a larger Content-Length is refused before the body), <see cref="BootLimits.TicketTimeout"/> per attempt,
/// <see cref="BootLimits.TicketAttempts"/> attempts <see cref="BootOptions.AttemptWait"/> apart. Never throws for
/// anything the network does: the answer is a <see cref="TicketAnswer"/>.
/// </summary>
internal sealed class TicketClient(HttpMessageInvoker http, BootOptions options, Action<TimeSpan> sleep, PinnedTls? tls)
{
    public TicketAnswer Post(Uri url, byte[] requestJson)
    {
        TicketAnswer answer = new(null, "not asked");
        int attempts = Math.Min(BootLimits.TicketAttempts, options.AttemptsPerObject);
        for (int attempt = 1; attempt <= attempts; attempt++)
        {
            (answer, bool retry) = TryOnce(url, requestJson);
            if (!retry)
                break;
            if (attempt < attempts)
                sleep(options.AttemptWait);
        }
        return answer;
    }

    static (TicketAnswer, bool Retry) NoTicket(string why, bool retry) => (new TicketAnswer(null, why), retry);

    static (TicketAnswer, bool Retry) NotATicket(TicketError error, string why) =>
        (new TicketAnswer(null, null, new BootTicketException(error, why)), false);

    (TicketAnswer, bool Retry) TryOnce(Uri url, byte[] requestJson)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(requestJson) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var timeout = new CancellationTokenSource(BootLimits.TicketTimeout);
        try
        {
            using var response = http.SendAsync(request, timeout.Token).GetAwaiter().GetResult();
            if (response.StatusCode != HttpStatusCode.OK)
                return NoTicket($"HTTP {(int)response.StatusCode} {response.ReasonPhrase}", (int)response.StatusCode >= 500);
            if (response.Content.Headers.ContentLength is long declared && declared > Limits.MaxBootTicketBytes)
                return NotATicket(TicketError.TooLarge, $"HTTP 200 with Content-Length {declared}, over the {Limits.MaxBootTicketBytes}-byte cap");
            using var body = response.Content.ReadAsStream(timeout.Token);
            byte[] buffer = new byte[Limits.MaxBootTicketBytes + 1];
            int total = 0, n;
            while (total < buffer.Length && (n = body.ReadAsync(buffer.AsMemory(total), timeout.Token).AsTask().GetAwaiter().GetResult()) > 0)
                total += n;
            if (total > Limits.MaxBootTicketBytes)
                return NotATicket(TicketError.TooLarge, $"HTTP 200 with a body over the {Limits.MaxBootTicketBytes}-byte cap");
            if (total == 0)
                return NotATicket(TicketError.Malformed, "HTTP 200 with an empty body");
            return (new TicketAnswer(buffer[..total], null), false);
        }
        catch (OperationCanceledException)
        {
            return NoTicket($"no answer within {BootLimits.TicketTimeout.TotalSeconds:0}s", true);
        }
        catch (HttpRequestException e)
        {
            if (e.InnerException is AuthenticationException || e.HttpRequestError == HttpRequestError.SecureConnectionError)
                return NoTicket(tls?.LastRefusal ?? (tls is null ? "https without tls_roots.pem in the trust policy" : $"TLS handshake failed: {Innermost(e)}"), false);
            return NoTicket($"connection failed: {Innermost(e)}", true);
        }
        catch (IOException e)
        {
            return NoTicket($"connection broke: {Innermost(e)}", true);
        }
    }

    static string Innermost(Exception e)
    {
        while (e.InnerException is not null)
            e = e.InnerException;
        return e is SocketException s ? s.SocketErrorCode.ToString() : e.Message;
    }
}

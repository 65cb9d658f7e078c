using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tabula.Fleet.Core;

namespace Tabula.Fleet.Api;

/// <summary>
/// /boot/v1: what stboot calls before it boots (freshness, issue 16). No bearer token: the request's Ed25519 signature by
/// the machine's identity key is the credential. The body is read here with the ticket request's own bound (4 KiB), not
/// the API-wide one, and refused with 413 body_too_large beyond it.
/// </summary>
public static class BootEndpoints
{
    /// <summary>The ticket URL path (the trust policy's ticket_url is https://CONTROLLER + this).</summary>
    public const string TicketPath = "/boot/v1/ticket";

    public static void MapBoot(this IEndpointRouteBuilder app) => app.MapPost(TicketPath, Ticket).RequireRateLimiting(RateLimits.Boot);

    private static async Task<IResult> Ticket(HttpContext http, TicketService tickets)
    {
        int limit = Packaging.Limits.MaxTicketRequestBytes;
        if (http.Request.ContentLength > limit)
            throw new FleetException(FleetError.TooLarge, $"a ticket request is at most {limit} bytes");
        byte[] buffer = new byte[limit + 1];
        int length = 0;
        var body = http.Request.Body;
        while (length < buffer.Length)
        {
            int read = await body.ReadAsync(buffer.AsMemory(length), http.RequestAborted);
            if (read == 0) break;
            length += read;
        }
        if (length > limit) throw new FleetException(FleetError.TooLarge, $"a ticket request is at most {limit} bytes");
        byte[] ticket = await tickets.IssueAsync(buffer.AsMemory(0, length), http.RequestAborted);
        http.Response.Headers.CacheControl = "no-store";
        return TypedResults.Bytes(ticket, "application/json");
    }
}

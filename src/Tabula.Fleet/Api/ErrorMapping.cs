using Tabula.Fleet.Protocol;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Tabula.Fleet.Api;

/// <summary>
/// The one place where failures become HTTP: every refusal is a JSON <see cref="ErrorBody"/> with a
/// stable <c>error</c> code. Unexpected exceptions are 500 without detail (the log has them).
/// </summary>
public static class ErrorMapping
{
    public static (int Status, string Code) Map(FleetError error) => error switch
    {
        FleetError.InvalidInput => (400, "invalid_input"),
        FleetError.Unauthenticated => (401, "unauthenticated"),
        FleetError.Forbidden => (403, "forbidden"),
        FleetError.NotFound => (404, "not_found"),
        FleetError.Duplicate => (409, "duplicate"),
        FleetError.IllegalTransition => (409, "illegal_transition"),
        FleetError.DeviceLimit => (409, "device_limit"),
        FleetError.ReplayedEnrollment => (401, "replayed_enrollment"),
        FleetError.ForgedEnrollment => (401, "forged_enrollment"),
        FleetError.PoolExhausted => (409, "pool_exhausted"),
        FleetError.Unfresh => (409, "unfresh"),
        FleetError.NotAttested => (409, "not_attested"),
        FleetError.NoCurrentRelease => (409, "no_current_release"),
        FleetError.ForgedTicketRequest => (401, "forged_ticket_request"),
        FleetError.RateLimited => (429, "rate_limited"),
        FleetError.AccountCreationRefused => (403, "account_creation_refused"),
        FleetError.TooLarge => (413, "body_too_large"),
        FleetError.FleetFull => (409, "fleet_full"),
        FleetError.TotpRequired => (403, "totp_required"),
        _ => (400, "invalid_input"),
    };

    public static async Task Middleware(HttpContext context, Func<Task> next)
    {
        try
        {
            await next();
            // Refusals the framework produces itself (unknown route, wrong method, body over the limit) get the same shape.
            if (context.Response.StatusCode >= 400 && !context.Response.HasStarted && context.Response.ContentLength is null
                && context.Response.ContentType is null)
            {
                var (code, message) = context.Response.StatusCode switch
                {
                    404 => ("not_found", "no such resource"),
                    405 => ("method_not_allowed", "this resource does not accept that method"),
                    413 => ("body_too_large", $"request bodies are at most {FleetLimits.MaxRequestBodyBytes} bytes"),
                    415 => ("unsupported_media_type", "send application/json"),
                    _ => ("bad_request", "the request was refused"),
                };
                await context.Response.WriteAsJsonAsync(new ErrorBody(code, message), FleetJson.Default.ErrorBody);
            }
        }
        catch (Exception e) when (!context.Response.HasStarted && Classify(e) is { } refusal)
        {
            context.Response.Clear();
            context.Response.StatusCode = refusal.Status;
            if (e is FleetException { RetryAfter: { } retry })
                context.Response.Headers.RetryAfter = RetryAfterSeconds(retry);
            await context.Response.WriteAsJsonAsync(new ErrorBody(refusal.Code, refusal.Message), FleetJson.Default.ErrorBody);
        }
    }

    /// <summary>Whole seconds, rounded up and at least 1 (RFC 9110 delay-seconds).</summary>
    public static string RetryAfterSeconds(TimeSpan retry) =>
        Math.Max(1, (long)Math.Ceiling(retry.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static (int Status, string Code, string Message)? Classify(Exception e) => e switch
    {
        FleetException f => (Map(f.Error).Status, Map(f.Error).Code, f.Message),
        BadHttpRequestException { StatusCode: 413 } => (413, "body_too_large", $"request bodies are at most {FleetLimits.MaxRequestBodyBytes} bytes"),
        BadHttpRequestException b when b.InnerException is JsonException => (400, "invalid_json", "the body is not valid JSON for this request"),
        BadHttpRequestException b => (b.StatusCode, "bad_request", b.Message),
        JsonException => (400, "invalid_json", "the body is not valid JSON for this request"),
        _ => null,
    };
}

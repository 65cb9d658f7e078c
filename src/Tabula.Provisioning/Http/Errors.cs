using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Tabula.Provisioning.Core;

namespace Tabula.Provisioning.Http;

/// <summary>The one place where failures become HTTP answers: every error is a JSON <see cref="ErrorBody"/>.</summary>
public static class Errors
{
    public static int StatusOf(ProvisioningError error) => error switch
    {
        ProvisioningError.MalformedRequest => StatusCodes.Status400BadRequest,
        ProvisioningError.InvalidName => StatusCodes.Status400BadRequest,
        ProvisioningError.MalformedDescriptor => StatusCodes.Status400BadRequest,
        ProvisioningError.PackageRefused => StatusCodes.Status422UnprocessableEntity,
        ProvisioningError.TooLarge => StatusCodes.Status413PayloadTooLarge,
        ProvisioningError.Unauthenticated => StatusCodes.Status401Unauthorized,
        ProvisioningError.NotFound => StatusCodes.Status404NotFound,
        ProvisioningError.NoMatchingGroup => StatusCodes.Status404NotFound,
        ProvisioningError.StoreFailed => StatusCodes.Status500InternalServerError,
        ProvisioningError.Forbidden => StatusCodes.Status403Forbidden,
        ProvisioningError.ChannelDowngrade => StatusCodes.Status409Conflict,
        _ => StatusCodes.Status500InternalServerError,
    };

    public static string CodeOf(ProvisioningError error) => error switch
    {
        ProvisioningError.MalformedRequest => "malformed_request",
        ProvisioningError.InvalidName => "invalid_name",
        ProvisioningError.MalformedDescriptor => "malformed_descriptor",
        ProvisioningError.PackageRefused => "package_refused",
        ProvisioningError.TooLarge => "too_large",
        ProvisioningError.Unauthenticated => "unauthenticated",
        ProvisioningError.NotFound => "not_found",
        ProvisioningError.NoMatchingGroup => "no_matching_group",
        ProvisioningError.StoreFailed => "store_failed",
        ProvisioningError.Forbidden => "forbidden",
        ProvisioningError.ChannelDowngrade => "channel_downgrade",
        _ => "internal",
    };

    public static Task WriteAsync(HttpContext http, int status, ErrorBody body)
    {
        http.Response.Clear();
        http.Response.StatusCode = status;
        if (status == StatusCodes.Status401Unauthorized)
            http.Response.Headers.WWWAuthenticate = "Bearer";
        http.Response.ContentType = "application/json";
        return http.Response.WriteAsync(JsonSerializer.Serialize(body, ProvisioningJsonContext.Default.ErrorBody));
    }

    /// <summary>Middleware: turns <see cref="ProvisioningException"/>, Kestrel's request errors (too large, too
    /// slow), malformed multipart and unexpected exceptions into JSON errors. A store failure is logged with its
    /// cause and answered without it.</summary>
    public static async Task HandleAsync(HttpContext http, RequestDelegate next)
    {
        try
        {
            await next(http);
            // No endpoint matched (routing leaves a bare 404): answer in the same JSON shape as every error.
            if (http.Response is { StatusCode: 404, HasStarted: false } && http.GetEndpoint() is null)
                await WriteAsync(http, 404, new ErrorBody("not_found", "no such resource"));
        }
        catch (Exception e) when (!http.Response.HasStarted && !http.RequestAborted.IsCancellationRequested)
        {
            var logger = http.RequestServices.GetRequiredService<ILogger<ProvisioningCore>>();
            (int status, ErrorBody body) = e switch
            {
                PackageRefusedException r => (StatusOf(r.Error), new ErrorBody(CodeOf(r.Error), r.Message, r.Verdict)),
                ProvisioningException { Error: ProvisioningError.StoreFailed } p =>
                    (500, new ErrorBody(CodeOf(p.Error), "the store failed; see the server log")),
                ProvisioningException p => (StatusOf(p.Error), new ErrorBody(CodeOf(p.Error), p.Message)),
                BadHttpRequestException b => (b.StatusCode, new ErrorBody(
                    b.StatusCode switch { 413 => "too_large", 408 => "timeout", _ => "malformed_request" }, b.Message)),
                InvalidDataException d => (400, new ErrorBody("malformed_request", d.Message)),
                _ => (500, new ErrorBody("internal", "unexpected server error; see the server log")),
            };
            if (e is ProvisioningException { Error: ProvisioningError.StoreFailed })
                logger.StoreFailed(e, e.Message);
            else if (status == 500)
                logger.Unexpected(e, http.GetEndpoint()?.DisplayName ?? "unknown");
            await WriteAsync(http, status, body);
        }
    }
}

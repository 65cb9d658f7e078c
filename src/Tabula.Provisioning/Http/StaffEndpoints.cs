using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;
using Tabula.Provisioning.Core;
using Tabula.Packaging;

namespace Tabula.Provisioning.Http;

/// <summary>
/// The staff API under /v1: publish (multipart: part "descriptor", then part "archive", streamed), channel moves,
/// listings and the audit log. Every request needs a bearer token; every change is audited by token name.
/// </summary>
public static class StaffEndpoints
{
    public static void MapStaffEndpoints(this IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1");
        v1.RequireRateLimiting(ServerPolicies.Staff);
        v1.WithRequestTimeout(ServerPolicies.Staff);
        v1.MapPost("/packages", Publish).WithName("publish");
        v1.MapGet("/packages", ListPackages).WithName("packages");
        v1.MapGet("/channels", ListChannels).WithName("channels");
        v1.MapPut("/channels/{channel}", MoveChannel).WithName("channel_move");
        v1.MapGet("/audit", ReadAudit).WithName("audit");
    }

    static async Task<Created<PublishResponse>> Publish(HttpContext http, ProvisioningCore core, StaffAuth auth,
        ProvisioningLimits limits, ProvisioningMetrics metrics, ILogger<ProvisioningCore> log, string? channel = null)
    {
        // Publishing and moving channels are separate roles: publishing with ?channel= does both.
        string actor = channel is null ? await auth.AuthenticateAsync(http, StaffRoles.Publish)
            : await auth.AuthenticateAsync(http, StaffRoles.Publish, StaffRoles.Channels);
        long maxBody = limits.MaxArchiveBytes + limits.MaxDescriptorBytes + 64 * 1024;
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
            size.MaxRequestBodySize = maxBody;
        if (http.Request.ContentLength > maxBody)
            throw new ProvisioningException(ProvisioningError.TooLarge, $"request exceeds the limit of {maxBody} bytes");
        if (!MediaTypeHeaderValue.TryParse(http.Request.ContentType, out var mediaType)
            || !mediaType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(mediaType.Boundary).Value is not { Length: > 0 and <= 70 } boundary)
            throw Malformed("expected multipart/form-data with parts \"descriptor\" and \"archive\"");

        var reader = new MultipartReader(boundary, http.Request.Body)
        {
            HeadersLengthLimit = ProvisioningLimits.MaxMultipartHeaderBytes,
            BodyLengthLimit = maxBody,
        };
        var descriptorPart = await NextPartAsync(reader, "descriptor", http.RequestAborted);
        byte[] descriptor = await ReadBoundedAsync(descriptorPart.Body, limits.MaxDescriptorBytes, http.RequestAborted);
        var archivePart = await NextPartAsync(reader, "archive", http.RequestAborted);
        PublishResult result;
        try
        {
            result = await core.PublishAsync(descriptor, archivePart.Body, channel, actor, http.RequestAborted);
        }
        catch (PackageRefusedException e)
        {
            metrics.Upload("refused", 0);
            log.PackageRefused(actor, e.Verdict.Found, e.Verdict.Valid, e.Verdict.Required);
            throw;
        }
        metrics.Upload("accepted", result.Package.ArchiveLength);
        log.PackageAccepted(result.Package.ArchiveSha256, actor, result.Verdict.Valid, result.Verdict.Required);
        if (result.ChannelMove is { } move)
        {
            metrics.ChannelMoved();
            log.ChannelMoved(move.Target, move.From, move.To, actor);
        }
        Sha256Digest.TryParse(result.Package.ArchiveSha256, out var archive);
        string descriptorUrl = "/" + PackageUrlLayout.Descriptor(archive);
        return TypedResults.Created(descriptorUrl, new PublishResponse(result.Package.ArchiveSha256,
            result.Package.ArchiveLength, result.Package.DescriptorSha256, descriptorUrl, "/" + PackageUrlLayout.Archive(archive),
            channel, result.Verdict));
    }

    static async Task<MultipartSection> NextPartAsync(MultipartReader reader, string name, CancellationToken ct)
    {
        var section = await reader.ReadNextSectionAsync(ct)
                      ?? throw Malformed($"multipart part \"{name}\" is missing");
        if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)
            || HeaderUtilities.RemoveQuotes(disposition.Name).Value != name)
            throw Malformed($"expected multipart part \"{name}\" here (parts: descriptor, then archive)");
        return section;
    }

    static async Task<byte[]> ReadBoundedAsync(Stream body, int max, CancellationToken ct)
    {
        var buffer = new MemoryStream();
        byte[] chunk = new byte[16 * 1024];
        int read;
        while ((read = await body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > max)
                throw new ProvisioningException(ProvisioningError.TooLarge, $"descriptor exceeds the limit of {max} bytes");
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    static async Task<Ok<IReadOnlyList<PackageRecord>>> ListPackages(HttpContext http, StaffAuth auth, IStore store)
    {
        await auth.AuthenticateAsync(http);
        return TypedResults.Ok(await store.ListPackagesAsync(http.RequestAborted));
    }

    static async Task<Ok<IReadOnlyList<ChannelRecord>>> ListChannels(HttpContext http, StaffAuth auth, IStore store)
    {
        await auth.AuthenticateAsync(http);
        return TypedResults.Ok(await store.ListChannelsAsync(http.RequestAborted));
    }

    static async Task<Ok<AuditEntry>> MoveChannel(string channel, HttpContext http, StaffAuth auth,
        ProvisioningCore core, ProvisioningLimits limits, ProvisioningMetrics metrics, ILogger<ProvisioningCore> log)
    {
        string actor = await auth.AuthenticateAsync(http, StaffRoles.Channels);
        byte[] body = await ReadBoundedAsync(http.Request.Body, limits.MaxJsonBodyBytes, http.RequestAborted);
        ChannelMoveRequest? request;
        try
        {
            request = JsonSerializer.Deserialize(body, ProvisioningJsonContext.Default.ChannelMoveRequest);
        }
        catch (JsonException e)
        {
            throw new ProvisioningException(ProvisioningError.MalformedRequest,
                "expected {\"archive_sha256\": \"<64 hex digits>\"}", e);
        }
        if (request is null || !Sha256Digest.TryParse(request.ArchiveSha256, out var archive))
            throw new ProvisioningException(ProvisioningError.MalformedRequest,
                "expected {\"archive_sha256\": \"<64 hex digits>\"}");
        var entry = await core.MoveChannelAsync(channel, archive, actor, request.Force, request.Reason, http.RequestAborted);
        metrics.ChannelMoved();
        log.ChannelMoved(entry.Target, entry.From, entry.To, actor);
        return TypedResults.Ok(entry);
    }

    static async Task<Ok<IReadOnlyList<AuditEntry>>> ReadAudit(HttpContext http, StaffAuth auth, IStore store,
        ProvisioningLimits limits)
    {
        await auth.AuthenticateAsync(http);
        return TypedResults.Ok(await store.ReadAuditAsync(limits.MaxAuditEntries, http.RequestAborted));
    }

    static ProvisioningException Malformed(string message) => new(ProvisioningError.MalformedRequest, message);
}

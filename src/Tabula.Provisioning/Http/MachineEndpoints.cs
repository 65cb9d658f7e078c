using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Net.Http.Headers;
using Tabula.Provisioning.Core;
using Tabula.Packaging;

namespace Tabula.Provisioning.Http;

/// <summary>
/// What machines fetch at boot: descriptors and archives by digest, by channel, and per machine by labels; the
/// per-machine host configuration. Objects are served as stored files (streamed in large chunks by
/// <see cref="FileBody"/>, never re-serialised) with their digest as strong ETag, Range and If-None-Match handled by
/// the file result. Nothing here is logged.
/// </summary>
public static class MachineEndpoints
{
    // Content-addressed bytes never change; pointers (channels, machines) must be revalidated (cheap: ETag).
    const string Immutable = "public, max-age=31536000, immutable";
    const string Revalidate = "no-cache";

    public static void MapMachineEndpoints(this IEndpointRouteBuilder app)
    {
        string[] getHead = [HttpMethods.Get, HttpMethods.Head];
        var machines = app.MapGroup("").RequireRateLimiting(ServerPolicies.Machines);
        machines.MapMethods("/ospkg/{hex}.zip", getHead, ArchiveByDigest).WithName("archive");
        machines.MapMethods("/ospkg/{hex}.json", getHead, DescriptorByDigest).WithName("descriptor");
        machines.MapMethods("/channels/{channel}.json", getHead, ChannelDescriptor).WithName("channel_descriptor");
        machines.MapMethods("/channels/{channel}.zip", getHead, ChannelArchive).WithName("channel_archive");
        machines.MapMethods("/machines/ospkg.json", getHead, MachineDescriptor).WithName("machine_descriptor");
        machines.MapMethods("/machines/host-config.json", getHead, MachineHostConfig).WithName("machine_host_config");
        machines.MapMethods("/groups/{group}/ospkg.json", getHead, GroupDescriptor).WithName("group_descriptor");
        machines.MapMethods("/groups/{group}/host-config.json", getHead, GroupHostConfig).WithName("group_host_config");
    }

    static async Task<IResult> ArchiveByDigest(string hex, ProvisioningCore core, HttpContext http)
    {
        var package = await core.ResolvePackageAsync(ParseDigest(hex), http.RequestAborted);
        return Serve(http, core.Object(package.ArchiveSha256), "application/zip", Immutable);
    }

    static async Task<IResult> DescriptorByDigest(string hex, ProvisioningCore core, HttpContext http)
    {
        var package = await core.ResolvePackageAsync(ParseDigest(hex), http.RequestAborted);
        return Serve(http, core.Object(package.DescriptorSha256), "application/json", Immutable);
    }

    static async Task<IResult> ChannelDescriptor(string channel, ProvisioningCore core, HttpContext http)
    {
        var package = await core.ResolveChannelAsync(channel, http.RequestAborted);
        return Serve(http, core.Object(package.DescriptorSha256), "application/json", Revalidate);
    }

    static async Task<IResult> ChannelArchive(string channel, ProvisioningCore core, HttpContext http)
    {
        var package = await core.ResolveChannelAsync(channel, http.RequestAborted);
        return Serve(http, core.Object(package.ArchiveSha256), "application/zip", Revalidate);
    }

    static async Task<IResult> MachineDescriptor(ProvisioningCore core, HttpContext http)
    {
        var (_, package) = await core.ResolveMachineAsync(Labels(http.Request.Query), http.RequestAborted);
        return Serve(http, core.Object(package.DescriptorSha256), "application/json", Revalidate);
    }

    static async Task<IResult> MachineHostConfig(ProvisioningCore core, HttpContext http) =>
        HostConfig(http, await core.SelectGroupAsync(Labels(http.Request.Query), http.RequestAborted));

    static async Task<IResult> GroupDescriptor(string group, ProvisioningCore core, HttpContext http)
    {
        var g = await FindGroupAsync(group, core, http);
        var package = await core.ResolveChannelAsync(g.Channel, http.RequestAborted);
        return Serve(http, core.Object(package.DescriptorSha256), "application/json", Revalidate);
    }

    static async Task<IResult> GroupHostConfig(string group, ProvisioningCore core, HttpContext http) =>
        HostConfig(http, await FindGroupAsync(group, core, http));

    static async Task<MachineGroup> FindGroupAsync(string group, ProvisioningCore core, HttpContext http)
    {
        if (!Names.IsValid(group))
            throw new ProvisioningException(ProvisioningError.InvalidName, "group " + Names.Rule);
        return (await core.Store.ListGroupsAsync(http.RequestAborted)).FirstOrDefault(g => g.Id == group)
               ?? throw new ProvisioningException(ProvisioningError.NotFound, $"no group named {group}");
    }

    static IResult HostConfig(HttpContext http, MachineGroup group)
    {
        if (group.HostConfig is not { } config)
            throw new ProvisioningException(ProvisioningError.NotFound, $"group {group.Id} has no host configuration");
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(config, ProvisioningJsonContext.Default.JsonElement);
        http.Response.Headers.CacheControl = Revalidate;
        return TypedResults.Bytes(bytes, "application/json",
            entityTag: new EntityTagHeaderValue($"\"{Sha256Digest.Of(bytes).Hex}\""));
    }

    /// <summary>Machine labels from the query string (<c>?mac=…&amp;hostname=…&amp;serial=…</c>), normalised.
    /// Unknown keys are refused so that a typo does not silently fall through to the default group.</summary>
    internal static IReadOnlyDictionary<string, string> Labels(IQueryCollection query)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, values) in query)
        {
            if (!MachineGroups.LabelKeys.Contains(key))
                throw new ProvisioningException(ProvisioningError.InvalidName,
                    $"unknown machine label; use {string.Join(", ", MachineGroups.LabelKeys)}");
            if (values.Count != 1 || !MachineGroups.TryNormalize(key, values[0], out string normalized))
                throw new ProvisioningException(ProvisioningError.InvalidName, $"label {key} has an invalid value");
            labels[key] = normalized;
        }
        return labels;
    }

    static Sha256Digest ParseDigest(string hex) =>
        Sha256Digest.TryParse(hex, out var digest)
            ? digest
            : throw new ProvisioningException(ProvisioningError.InvalidName, "a digest is 64 lowercase hex digits");

    static IResult Serve(HttpContext http, StoredObject stored, string contentType, string cacheControl)
    {
        http.Response.Headers.CacheControl = cacheControl;
        // The file result sets status and headers (ETag, Range, 304) and then sends a GET's body through FileBody.
        if (HttpMethods.IsGet(http.Request.Method))
            http.Features.Set<IHttpResponseBodyFeature>(new FileBody(http.Features.GetRequiredFeature<IHttpResponseBodyFeature>()));
        return TypedResults.PhysicalFile(stored.PhysicalPath, contentType, lastModified: stored.LastModified,
            entityTag: new EntityTagHeaderValue($"\"{stored.Digest.Hex}\""), enableRangeProcessing: true);
    }
}

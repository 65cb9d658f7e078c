using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Tabula.Provisioning.Core;
using Tabula.Provisioning.Http;
using Tabula.Tls;

namespace Tabula.Provisioning.Client;

/// <summary>An answer from the staff API: the status, and either the value or the server's JSON error.</summary>
public sealed record StaffAnswer<T>(HttpStatusCode Status, T? Value, ErrorBody? Error) where T : class;

/// <summary>
/// The staff side of the API, used by <c>tabula publish</c> and <c>tabula provisioning channel</c>. Pins the
/// provisioning CA when given (<c>--ca</c>): the server certificate must chain to it and match the host name.
/// Uploads stream the archive from disk.
/// </summary>
public sealed class ProvisioningClient(HttpClient http) : IDisposable
{
    public static ProvisioningClient Create(Uri server, string? caFile, string? token, TimeSpan timeout)
    {
        // Without --ca the system store decides (a server with a public certificate); with it, only that CA.
        var handler = caFile is null ? new SocketsHttpHandler() : PinnedHttp.Handler(PinnedTlsRoots.LoadPemFile(caFile, TimeProvider.System));
        handler.ConnectTimeout = TimeSpan.FromSeconds(30);
        var client = new HttpClient(handler) { BaseAddress = server, Timeout = timeout };
        if (token is not null)
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return new ProvisioningClient(client);
    }

    public async Task<StaffAnswer<PublishResponse>> PublishAsync(string descriptorPath, string archivePath,
        string? channel, CancellationToken ct)
    {
        using var content = new MultipartFormDataContent();
        var descriptor = new ByteArrayContent(await File.ReadAllBytesAsync(descriptorPath, ct));
        descriptor.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        content.Add(descriptor, "descriptor", Path.GetFileName(descriptorPath));
        await using var archiveFile = new FileStream(archivePath, FileMode.Open, FileAccess.Read, FileShare.Read,
            bufferSize: 1, FileOptions.Asynchronous | FileOptions.SequentialScan);
        var archive = new StreamContent(archiveFile, ProvisioningLimits.CopyBufferBytes);
        archive.Headers.ContentType = new MediaTypeHeaderValue("application/zip");
        content.Add(archive, "archive", Path.GetFileName(archivePath));
        string path = channel is null ? "v1/packages" : $"v1/packages?channel={Uri.EscapeDataString(channel)}";
        // Expect: 100-continue lets the server refuse (wrong token, 401) before we stream the archive;
        // without it a refusal that arrives mid-upload resets the connection and the client sees a send error.
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        request.Headers.ExpectContinue = true;
        using var response = await http.SendAsync(request, ct);
        return await ReadAsync(response, ProvisioningJsonContext.Default.PublishResponse, ct);
    }

    public Task<StaffAnswer<AuditEntry>> MoveChannelAsync(string channel, string archiveSha256, CancellationToken ct) =>
        MoveChannelAsync(channel, archiveSha256, force: false, reason: null, ct);

    /// <summary>Moves a channel; <paramref name="force"/> with a reason moves it to an older release (audited).</summary>
    public async Task<StaffAnswer<AuditEntry>> MoveChannelAsync(string channel, string archiveSha256, bool force, string? reason, CancellationToken ct)
    {
        byte[] body = JsonSerializer.SerializeToUtf8Bytes(new ChannelMoveRequest(archiveSha256, force, reason),
            ProvisioningJsonContext.Default.ChannelMoveRequest);
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await http.PutAsync($"v1/channels/{Uri.EscapeDataString(channel)}", content, ct);
        return await ReadAsync(response, ProvisioningJsonContext.Default.AuditEntry, ct);
    }

    public async Task<StaffAnswer<IReadOnlyList<ChannelRecord>>> ListChannelsAsync(CancellationToken ct)
    {
        using var response = await http.GetAsync("v1/channels", ct);
        return await ReadAsync(response, ProvisioningJsonContext.Default.IReadOnlyListChannelRecord, ct);
    }

    public async Task<StaffAnswer<IReadOnlyList<AuditEntry>>> ReadAuditAsync(CancellationToken ct)
    {
        using var response = await http.GetAsync("v1/audit", ct);
        return await ReadAsync(response, ProvisioningJsonContext.Default.IReadOnlyListAuditEntry, ct);
    }

    static async Task<StaffAnswer<T>> ReadAsync<T>(HttpResponseMessage response,
        System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, CancellationToken ct) where T : class
    {
        byte[] body = await response.Content.ReadAsByteArrayAsync(ct);
        try
        {
            return response.IsSuccessStatusCode
                ? new StaffAnswer<T>(response.StatusCode, JsonSerializer.Deserialize(body, type), null)
                : new StaffAnswer<T>(response.StatusCode, null,
                    JsonSerializer.Deserialize(body, ProvisioningJsonContext.Default.ErrorBody));
        }
        catch (JsonException)
        {
            return new StaffAnswer<T>(response.StatusCode, null,
                new ErrorBody("unreadable_answer", $"the server answered {(int)response.StatusCode} without a JSON body"));
        }
    }

    public void Dispose() => http.Dispose();
}

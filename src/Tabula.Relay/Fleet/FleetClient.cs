using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Authentication;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Tabula.Fleet.Protocol;
using Tabula.Packaging;
using Tabula.Tls;

namespace Tabula.Relay.Fleet;

/// <summary>The controller answered with an error status and its JSON error body.</summary>
public sealed class FleetCallException(string call, int status, string code, string message)
    : Exception($"{call}: HTTP {status} {code}: {message}")
{
    public int Status { get; } = status;
    public string Code { get; } = code;
    /// <summary>The relay token is no longer valid (a newer boot of this identity enrolled, or the controller forgot it): enroll again.</summary>
    public bool NeedsEnrollment => Status == 401;
}

/// <summary>
/// HTTPS to the fleet controller's /relay/v1 API, trusting only the CA pinned in the signed package. HTTP/2 when the
/// controller offers it (one connection carries the peer stream and the reports), else HTTP/1.1. Replies other than
/// the stream are JSON of at most 64 KiB. Transport failures become <see cref="RelayException"/> with
/// <see cref="RelayFailure.Unreachable"/> (and the TLS refusal when the certificate was the problem).
/// </summary>
public sealed class FleetClient : IDisposable
{
    const int MaxReplyBytes = 64 * 1024;
    static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(20);

    readonly HttpClient http;
    readonly PinnedTlsRoots pinned;

    public FleetClient(Uri baseUrl, IReadOnlyList<Certificate> fleetCa, TimeProvider time)
    {
        pinned = new PinnedTlsRoots(fleetCa, time);
        var handler = PinnedHttp.Handler(pinned);
        handler.ConnectTimeout = TimeSpan.FromSeconds(10);
        handler.AllowAutoRedirect = false;
        handler.PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2);
        handler.KeepAlivePingDelay = TimeSpan.FromSeconds(30);
        handler.KeepAlivePingTimeout = TimeSpan.FromSeconds(20);
        http = new HttpClient(handler)
        {
            BaseAddress = baseUrl,
            Timeout = System.Threading.Timeout.InfiniteTimeSpan,   // per call below; the peer stream is open-ended
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionOrLower,
        };
    }

    /// <summary>The relay token from the last enrollment, sent on every later call.</summary>
    public string? RelayToken { get; set; }

    public async Task<byte[]> NonceAsync(string enrollmentToken, CancellationToken ct)
    {
        var reply = await CallAsync("enroll/nonce", HttpMethod.Post, RelayRoutes.Prefix + RelayRoutes.Nonce, enrollmentToken, null, RelayWireJson.Default.NonceResponse, ct);
        try { return Convert.FromHexString(reply.Nonce); }
        catch (FormatException) { throw new RelayException("enroll", RelayFailure.BadReply, "the nonce is not hex"); }
    }

    public Task<EnrollResponse> EnrollAsync(string enrollmentToken, EnrollBody request, CancellationToken ct) =>
        CallAsync("enroll", HttpMethod.Post, RelayRoutes.Prefix + RelayRoutes.Enroll, enrollmentToken,
            JsonContent.Create(request, RelayWireJson.Default.EnrollBody), RelayWireJson.Default.EnrollResponse, ct);

    public Task<RelayConfigView> ConfigAsync(CancellationToken ct) =>
        CallAsync("config", HttpMethod.Get, RelayRoutes.Prefix + RelayRoutes.Config, RelayToken, null, RelayWireJson.Default.RelayConfigView, ct);

    public Task AppliedAsync(long revision, CancellationToken ct) =>
        CallAsync<object>("applied", HttpMethod.Post, RelayRoutes.Prefix + RelayRoutes.Applied, RelayToken,
            JsonContent.Create(new AppliedRequest(revision), RelayWireJson.Default.AppliedRequest), null, ct);

    public Task HealthAsync(HealthReport report, CancellationToken ct) =>
        CallAsync<object>("health", HttpMethod.Post, RelayRoutes.Prefix + RelayRoutes.Health, RelayToken,
            JsonContent.Create(report, RelayWireJson.Default.HealthReport), null, ct);

    /// <summary>Opens the peer stream from <paramref name="from"/>; the caller reads NDJSON lines until it ends.</summary>
    public async Task<Stream> OpenPeersAsync(long from, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{RelayRoutes.Prefix}{RelayRoutes.Peers}?from={from}");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", RelayToken);
        HttpResponseMessage response;
        using (var timeout = Timeout(ct))
            response = await SendAsync("peers", request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        if (!response.IsSuccessStatusCode)
        {
            using (response) throw await ErrorAsync("peers", response, ct);
        }
        return new ResponseStream(response, await response.Content.ReadAsStreamAsync(ct));
    }

    async Task<T> CallAsync<T>(string call, HttpMethod method, string path, string? token, HttpContent? body, JsonTypeInfo<T>? reply, CancellationToken ct)
    {
        using var timeout = Timeout(ct);
        using var request = new HttpRequestMessage(method, path) { Content = body };
        if (token is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await SendAsync(call, request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        if (!response.IsSuccessStatusCode)
            throw await ErrorAsync(call, response, timeout.Token);
        if (reply is null) return default!;
        byte[] bytes = await ReadLimitedAsync(response, timeout.Token);
        try
        {
            return JsonSerializer.Deserialize(bytes, reply) ?? throw new JsonException("null");
        }
        catch (JsonException)
        {
            throw new RelayException(call, RelayFailure.BadReply, $"the controller's reply is not the expected JSON ({bytes.Length} bytes)");
        }
    }

    async Task<HttpResponseMessage> SendAsync(string call, HttpRequestMessage request, HttpCompletionOption completion, CancellationToken ct)
    {
        try
        {
            return await http.SendAsync(request, completion, ct);
        }
        catch (HttpRequestException e)
        {
            string why = e.InnerException is AuthenticationException ? pinned.LastRefusal ?? e.Message : e.Message;
            throw new RelayException(call, RelayFailure.Unreachable, why, e);
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested || e.CancellationToken != ct)
        {
            throw new RelayException(call, RelayFailure.Timeout, $"no answer within {CallTimeout.TotalSeconds:0}s", e);
        }
    }

    static async Task<FleetCallException> ErrorAsync(string call, HttpResponseMessage response, CancellationToken ct)
    {
        ErrorBody? error = null;
        try
        {
            error = JsonSerializer.Deserialize(await ReadLimitedAsync(response, ct), RelayWireJson.Default.ErrorBody);
        }
        catch (Exception e) when (e is JsonException or RelayException or HttpRequestException) { }
        // A body missing a field deserializes it as null despite the annotation: the defaults below cover it.
        return new FleetCallException(call, (int)response.StatusCode, error?.Error ?? "unknown", error?.Message ?? response.ReasonPhrase ?? "");
    }

    static async Task<byte[]> ReadLimitedAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.Content.Headers.ContentLength > MaxReplyBytes)
            throw new RelayException("fleet", RelayFailure.ReplyTooLarge, $"{response.Content.Headers.ContentLength} bytes; the limit is {MaxReplyBytes}");
        await using var stream = await response.Content.ReadAsStreamAsync(ct);
        var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int n;
        while ((n = await stream.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + n > MaxReplyBytes)
                throw new RelayException("fleet", RelayFailure.ReplyTooLarge, $"over {MaxReplyBytes} bytes");
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    static CancellationTokenSource Timeout(CancellationToken ct)
    {
        var source = CancellationTokenSource.CreateLinkedTokenSource(ct);
        source.CancelAfter(CallTimeout);
        return source;
    }

    public void Dispose() => http.Dispose();

    /// <summary>The response body that also disposes its response.</summary>
    sealed class ResponseStream(HttpResponseMessage response, Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) => inner.ReadAsync(buffer, ct);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                response.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}

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
/// <para>
/// Failover (issue 18): the client holds the controller instances' URLs in order and uses one at a time
/// (<see cref="Controller"/>). A call that cannot reach it (connection, TLS, DNS, timeout) or gets a 5xx moves on to the
/// next and tries it at once, each URL at most once per call; only when every one failed does the call fail, and the
/// caller's own backoff (1 s doubling to 30 s, with jitter) bounds how often the list is tried again. A peer stream that
/// breaks (reset, idle) moves on too, so the resubscription goes to the next instance. The client stays with the
/// instance that answers (no fail-back). Every instance is held to the same pinned CA: failing over never trusts more.
/// Every call of the agent may be repeated on another instance: the nonce, a fresh one per try; an enrollment whose
/// answer was lost, refused as a replay, so the agent asks for a new nonce; applied and health reports, idempotent.
/// </para>
/// </summary>
public sealed class FleetClient : IDisposable
{
    const int MaxReplyBytes = 64 * 1024;
    static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(20);

    readonly HttpClient http;
    readonly PinnedTlsRoots pinned;
    readonly IReadOnlyList<Uri> controllers;
    readonly Action<string>? note;
    int current;
    long failovers;

    public FleetClient(Uri baseUrl, IReadOnlyList<Certificate> fleetCa, TimeProvider time) : this([baseUrl], fleetCa, time) { }

    /// <param name="controllers">The controller instances' base URLs, tried in this order (Tabula.Fleet.Protocol's
    /// <see cref="RelayConfig.FleetUrls"/>).</param>
    /// <param name="fleetCa">The pinned CA, for every instance alike.</param>
    /// <param name="time">The clock of the certificate checks.</param>
    /// <param name="note">Told of each move to another instance (a console note; URLs of controllers only).</param>
    public FleetClient(IReadOnlyList<Uri> controllers, IReadOnlyList<Certificate> fleetCa, TimeProvider time, Action<string>? note = null)
    {
        ArgumentOutOfRangeException.ThrowIfZero(controllers.Count);
        this.controllers = [.. controllers];
        this.note = note;
        pinned = new PinnedTlsRoots(fleetCa, time);
        var handler = PinnedHttp.Handler(pinned);
        handler.ConnectTimeout = TimeSpan.FromSeconds(10);
        handler.AllowAutoRedirect = false;
        handler.PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2);
        handler.KeepAlivePingDelay = TimeSpan.FromSeconds(30);
        handler.KeepAlivePingTimeout = TimeSpan.FromSeconds(20);
        http = new HttpClient(handler)
        {
            Timeout = System.Threading.Timeout.InfiniteTimeSpan,   // per call below; the peer stream is open-ended
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionOrLower,
        };
    }

    /// <summary>The controller instance the next call goes to first.</summary>
    public Uri Controller => controllers[Volatile.Read(ref current)];

    /// <summary>Every controller URL, in the order they are tried.</summary>
    public IReadOnlyList<Uri> Controllers => controllers;

    /// <summary>How many times the client moved on from an instance that failed.</summary>
    public long Failovers => Interlocked.Read(ref failovers);

    /// <summary>The relay token from the last enrollment, sent on every later call.</summary>
    public string? RelayToken { get; set; }

    public async Task<byte[]> NonceAsync(string enrollmentToken, CancellationToken ct) => (await NonceAsync(enrollmentToken, null, ct)).Nonce;

    /// <summary>
    /// POST /relay/v1/enroll/nonce; with <paramref name="keys"/> (the TPM's EK certificate and AK, issue 19) in the body, the
    /// answer also carries the controller's credential-activation challenge for that AK (null from a controller before it).
    /// The body goes with its Content-Length (the controller reads a body only when one is announced).
    /// </summary>
    public async Task<(byte[] Nonce, CredentialChallenge? Challenge)> NonceAsync(string enrollmentToken, AttestationKeys? keys, CancellationToken ct)
    {
        byte[]? body = keys is null ? null : JsonSerializer.SerializeToUtf8Bytes(keys, RelayWireJson.Default.AttestationKeys);
        var reply = await CallAsync("enroll/nonce", HttpMethod.Post, RelayRoutes.Prefix + RelayRoutes.Nonce, enrollmentToken,
            body is null ? null : () => new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
            RelayWireJson.Default.NonceResponse, ct);
        try { return (Convert.FromHexString(reply.Nonce), reply.Credential); }
        catch (FormatException) { throw new RelayException("enroll", RelayFailure.BadReply, "the nonce is not hex"); }
    }

    public Task<EnrollResponse> EnrollAsync(string enrollmentToken, EnrollBody request, CancellationToken ct) =>
        CallAsync("enroll", HttpMethod.Post, RelayRoutes.Prefix + RelayRoutes.Enroll, enrollmentToken,
            () => JsonContent.Create(request, RelayWireJson.Default.EnrollBody), RelayWireJson.Default.EnrollResponse, ct);

    public Task<RelayConfigView> ConfigAsync(CancellationToken ct) =>
        CallAsync("config", HttpMethod.Get, RelayRoutes.Prefix + RelayRoutes.Config, RelayToken, null, RelayWireJson.Default.RelayConfigView, ct);

    public Task AppliedAsync(long revision, CancellationToken ct) =>
        CallAsync<object>("applied", HttpMethod.Post, RelayRoutes.Prefix + RelayRoutes.Applied, RelayToken,
            () => JsonContent.Create(new AppliedRequest(revision), RelayWireJson.Default.AppliedRequest), null, ct);

    public Task HealthAsync(HealthReport report, CancellationToken ct) =>
        CallAsync<object>("health", HttpMethod.Post, RelayRoutes.Prefix + RelayRoutes.Health, RelayToken,
            () => JsonContent.Create(report, RelayWireJson.Default.HealthReport), null, ct);

    /// <summary>
    /// GET /relay/v1/command?after=N (issue 18): the controller's newest reboot command for this boot above sequence
    /// <paramref name="after"/>, as its bytes, or null when none came within the controller's long poll (204).
    /// </summary>
    public async Task<byte[]?> CommandAsync(long after, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(CommandPollTimeout);
        var (answer, _) = await SendAsync("command", HttpMethod.Get, $"{RelayRoutes.Prefix}{RelayRoutes.Command}?after={after}&wait=15", RelayToken, null, timeout.Token);
        using var response = answer;
        if (response.StatusCode == HttpStatusCode.NoContent) return null;
        if (!response.IsSuccessStatusCode) throw await ErrorAsync("command", response, timeout.Token);
        byte[] bytes = await ReadLimitedAsync(response, timeout.Token);
        try
        {
            var reply = JsonSerializer.Deserialize(bytes, RelayWireJson.Default.CommandResponse) ?? throw new JsonException("null");
            return Convert.FromBase64String(reply.Command);
        }
        catch (Exception e) when (e is JsonException or FormatException or ArgumentNullException)
        {
            throw new RelayException("command", RelayFailure.BadReply, "the controller's command reply is not {\"command\": base64}");
        }
    }

    /// <summary>The controller's long poll (25 s) plus slack.</summary>
    static readonly TimeSpan CommandPollTimeout = TimeSpan.FromSeconds(40);

    /// <summary>POST /relay/v1/command/ack: what the agent made of command <paramref name="sequence"/>.</summary>
    public Task CommandAckAsync(long sequence, bool accepted, string? refusal, CancellationToken ct) =>
        CallAsync<object>("command/ack", HttpMethod.Post, RelayRoutes.Prefix + RelayRoutes.CommandAck, RelayToken,
            () => JsonContent.Create(new CommandAckRequest(sequence, accepted, refusal), RelayWireJson.Default.CommandAckRequest), null, ct);

    /// <summary>Opens the peer stream from <paramref name="from"/>; the caller reads NDJSON lines until it ends.</summary>
    public async Task<Stream> OpenPeersAsync(long from, CancellationToken ct)
    {
        string path = $"{RelayRoutes.Prefix}{RelayRoutes.Peers}?from={from}";
        var (response, index) = await SendAsync("peers", HttpMethod.Get, path, RelayToken, null, ct);
        if (!response.IsSuccessStatusCode)
        {
            using (response) throw await ErrorAsync("peers", response, ct);
        }
        return new ResponseStream(this, index, response, await response.Content.ReadAsStreamAsync(ct));
    }

    async Task<T> CallAsync<T>(string call, HttpMethod method, string path, string? token, Func<HttpContent>? body, JsonTypeInfo<T>? reply, CancellationToken ct)
    {
        var (answer, _) = await SendAsync(call, method, path, token, body, ct);
        using var response = answer;
        using var timeout = Timeout(ct);
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

    /// <summary>
    /// Sends to <see cref="Controller"/> and, when it cannot be reached, times out or answers 5xx, to the next instances
    /// in turn (each once). Returns the first answer below 500 (headers read), or the last instance's 5xx; throws the
    /// last transport failure when none answered.
    /// </summary>
    async Task<(HttpResponseMessage Response, int Index)> SendAsync(string call, HttpMethod method, string path, string? token, Func<HttpContent>? body, CancellationToken ct)
    {
        int start = Volatile.Read(ref current);
        RelayException? failed = null;
        for (int attempt = 0; attempt < controllers.Count; attempt++)
        {
            int index = (start + attempt) % controllers.Count;
            bool last = attempt == controllers.Count - 1;
            using var request = new HttpRequestMessage(method, new Uri(controllers[index], path)) { Content = body?.Invoke() };   // a fresh body per try
            if (token is not null)
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            HttpResponseMessage response;
            using (var timeout = Timeout(ct))
            {
                try
                {
                    response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
                }
                catch (HttpRequestException e)
                {
                    string why = e.InnerException is AuthenticationException ? pinned.LastRefusal ?? e.Message : e.Message;
                    failed = new RelayException(call, RelayFailure.Unreachable, why, e);
                    MoveOn(index, failed.Detail);
                    continue;
                }
                catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
                {
                    failed = new RelayException(call, RelayFailure.Timeout, $"no answer within {CallTimeout.TotalSeconds:0}s", e);
                    MoveOn(index, failed.Detail);
                    continue;
                }
            }
            if ((int)response.StatusCode >= 500 && !last)
            {
                MoveOn(index, $"HTTP {(int)response.StatusCode}");
                response.Dispose();
                continue;
            }
            if ((int)response.StatusCode >= 500)
                MoveOn(index, $"HTTP {(int)response.StatusCode}");
            return (response, index);
        }
        throw failed!;
    }

    /// <summary>Moves <see cref="Controller"/> past <paramref name="index"/>, unless another call already did.</summary>
    void MoveOn(int index, string why)
    {
        if (controllers.Count == 1) return;
        int next = (index + 1) % controllers.Count;
        if (Interlocked.CompareExchange(ref current, next, index) != index) return;
        Interlocked.Increment(ref failovers);
        note?.Invoke($"controller {controllers[index].Authority} failed ({why}); now {controllers[next].Authority}");
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

    /// <summary>The response body that also disposes its response; a read that fails (reset, the idle timeout) moves the
    /// client on from the instance it came from, so the resubscription starts at the next.</summary>
    sealed class ResponseStream(FleetClient owner, int index, HttpResponseMessage response, Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
        {
            try
            {
                return await inner.ReadAsync(buffer, ct);
            }
            catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException)
            {
                owner.MoveOn(index, e is OperationCanceledException ? "the stream went idle" : "the stream broke");
                throw;
            }
        }

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

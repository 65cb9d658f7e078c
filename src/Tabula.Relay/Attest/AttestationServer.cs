using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Tabula.Fleet.Protocol;

namespace Tabula.Relay.Attest;

/// <summary>
/// The relay's in-tunnel attestation service (issue 19, docs/attestation.md): on its gateway addresses, TCP port
/// <see cref="AttestationBinding.Port"/>, the one service besides DNS customers reach there. One exchange per connection,
/// newline-delimited JSON: the relay sends its keys (<see cref="AttestationKeys"/>), the customer sends a nonce and its own
/// credential-activation challenge (<see cref="AttestQuoteRequest"/>), the relay answers with fresh evidence
/// (<see cref="AttestQuoteResponse"/>: a quote whose qualifying data is SHA-256(nonce ‖ WireGuard key)) and closes.
/// </summary>
/// <remarks>
/// It must never starve WireGuard (which runs in the kernel) nor let one customer starve the others: each peer (source
/// address) has a token bucket (<see cref="Limits.Burst"/> exchanges, one more per <see cref="Limits.Refill"/>), refused
/// exchanges get one error line and are closed at once; at most <see cref="Limits.MaxConnections"/> connections are open
/// and TPM work is serialized, with at most <see cref="Limits.MaxWaiting"/> exchanges waiting for the TPM; every read and
/// write has a deadline. The service logs counts only, never an address.
/// </remarks>
public sealed class AttestationServer : IAsyncDisposable
{
    /// <summary>The service's bounds (arbitrary, sized for a TPM that quotes in ~50-300 ms).</summary>
    public static class Limits
    {
        /// <summary>Exchanges a peer may start at once after a quiet period.</summary>
        public const int Burst = 3;
        /// <summary>One more exchange per this much time.</summary>
        public static readonly TimeSpan Refill = TimeSpan.FromSeconds(2);
        /// <summary>Connections open at once, all peers.</summary>
        public const int MaxConnections = 16;
        /// <summary>Exchanges waiting for the TPM; more are refused as busy.</summary>
        public const int MaxWaiting = 4;
        /// <summary>The longest request line.</summary>
        public const int MaxRequestBytes = 4096;
        /// <summary>Deadline of a whole exchange.</summary>
        public static readonly TimeSpan ExchangeTimeout = TimeSpan.FromSeconds(10);
        /// <summary>Peers remembered by the rate limiter before idle ones are forgotten.</summary>
        public const int MaxPeers = 65_536;
    }

    readonly IRelayTpm tpm;
    readonly Func<byte[]> wireGuardKey;
    readonly Func<byte[]?> akCertificate;
    readonly TimeProvider time;
    readonly List<Socket> listeners = [];
    readonly CancellationTokenSource stop = new();
    readonly ConcurrentDictionary<IPAddress, Bucket> buckets = new();
    readonly SemaphoreSlim tpmGate = new(1, 1);
    readonly SemaphoreSlim connections = new(Limits.MaxConnections, Limits.MaxConnections);
    readonly List<Task> loops = [];
    int waiting;
    long served, refused;

    sealed class Bucket(double tokens, long at)
    {
        public double Tokens = tokens;
        public long At = at;
    }

    AttestationServer(IRelayTpm tpm, Func<byte[]> wireGuardKey, Func<byte[]?> akCertificate, TimeProvider time)
    {
        this.tpm = tpm;
        this.wireGuardKey = wireGuardKey;
        this.akCertificate = akCertificate;
        this.time = time;
    }

    /// <summary>Exchanges answered with evidence.</summary>
    public long Served => Interlocked.Read(ref served);

    /// <summary>Exchanges refused (rate limit, busy, bad request).</summary>
    public long Refused => Interlocked.Read(ref refused);

    /// <summary>The bound endpoints (port 0 in tests picks one).</summary>
    public IReadOnlyList<IPEndPoint> Endpoints => [.. listeners.Select(l => (IPEndPoint)l.LocalEndPoint!)];

    /// <summary>Listens on <paramref name="addresses"/> (the gateway addresses) and serves until disposed; <paramref name="sockets"/>
    /// makes the listening sockets (in the relay's network namespace), a plain TCP socket by default.</summary>
    public static AttestationServer Start(IEnumerable<IPEndPoint> addresses, IRelayTpm tpm, Func<byte[]> wireGuardKey, Func<byte[]?> akCertificate,
        TimeProvider? time = null, Func<AddressFamily, Socket>? sockets = null)
    {
        var server = new AttestationServer(tpm, wireGuardKey, akCertificate, time ?? TimeProvider.System);
        try
        {
            foreach (var endpoint in addresses)
            {
                var socket = sockets?.Invoke(endpoint.AddressFamily) ?? new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                server.listeners.Add(socket);
                if (endpoint.AddressFamily == AddressFamily.InterNetworkV6) socket.DualMode = false;
                // The gateway addresses are on wg0, which may come up after us: bind them even before they exist.
                socket.SetRawSocketOption(0 /* SOL_IP */, 15 /* IP_FREEBIND */, BitConverter.GetBytes(1));
                socket.Bind(endpoint);
                socket.Listen(64);
            }
        }
        catch
        {
            foreach (var l in server.listeners) l.Dispose();
            throw;
        }
        foreach (var l in server.listeners) server.loops.Add(Task.Run(() => server.AcceptLoopAsync(l)));
        return server;
    }

    async Task AcceptLoopAsync(Socket listener)
    {
        while (!stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await listener.AcceptAsync(stop.Token); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            _ = Task.Run(() => HandleAsync(client));
        }
    }

    bool TakeToken(IPAddress peer)
    {
        long now = time.GetTimestamp();
        if (buckets.Count > Limits.MaxPeers)
        {
            // Forget peers whose buckets are full again (idle for a burst's worth of refills).
            long idle = (long)(Limits.Refill.TotalSeconds * Limits.Burst * time.TimestampFrequency);
            foreach (var (address, b) in buckets)
                if (now - Volatile.Read(ref b.At) > idle) buckets.TryRemove(address, out _);
        }
        var bucket = buckets.GetOrAdd(peer, _ => new Bucket(Limits.Burst, now));
        lock (bucket)
        {
            double elapsed = (double)(now - bucket.At) / time.TimestampFrequency;
            bucket.Tokens = Math.Min(Limits.Burst, bucket.Tokens + elapsed / Limits.Refill.TotalSeconds);
            bucket.At = now;
            if (bucket.Tokens < 1) return false;
            bucket.Tokens -= 1;
            return true;
        }
    }

    async Task HandleAsync(Socket client)
    {
        using (client)
        {
            if (!await connections.WaitAsync(0))
            {
                Interlocked.Increment(ref refused);
                return;   // closed at once: too many open
            }
            try
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
                deadline.CancelAfter(Limits.ExchangeTimeout);
                await using var stream = new NetworkStream(client, ownsSocket: false);
                var peer = ((IPEndPoint)client.RemoteEndPoint!).Address;
                if (peer.IsIPv4MappedToIPv6) peer = peer.MapToIPv4();
                if (!TakeToken(peer))
                {
                    Interlocked.Increment(ref refused);
                    await WriteLineAsync(stream, new ErrorBody("rate_limited", $"at most {Limits.Burst} attestations at once, then one per {Limits.Refill.TotalSeconds:0} s"),
                        AttestationWireJson.Default.ErrorBody, deadline.Token);
                    return;
                }
                await WriteLineAsync(stream, new AttestationKeys(Convert.ToBase64String(tpm.EkCertificate), Convert.ToBase64String(tpm.AkPublic)),
                    AttestationWireJson.Default.AttestationKeys, deadline.Token);
                byte[]? line = await ReadLineAsync(stream, deadline.Token);
                AttestQuoteRequest? request = null;
                try { request = line is null ? null : JsonSerializer.Deserialize(line, AttestationWireJson.Default.AttestQuoteRequest); }
                catch (JsonException) { }
                if (Validate(request) is not { } valid)
                {
                    Interlocked.Increment(ref refused);
                    await WriteLineAsync(stream, new ErrorBody("invalid_input",
                        $"send one line of JSON: {{\"nonce\": hex of {AttestationBinding.MinNonceBytes}-{AttestationBinding.MaxNonceBytes} bytes, \"challenge\": {{\"credential_blob\", \"encrypted_secret\"}} (base64)}}"),
                        AttestationWireJson.Default.ErrorBody, deadline.Token);
                    return;
                }
                if (Interlocked.Increment(ref waiting) > Limits.MaxWaiting)
                {
                    Interlocked.Decrement(ref waiting);
                    Interlocked.Increment(ref refused);
                    await WriteLineAsync(stream, new ErrorBody("busy", "the TPM is busy; try again in a few seconds"), AttestationWireJson.Default.ErrorBody, deadline.Token);
                    return;
                }
                AttestQuoteResponse response;
                try
                {
                    await tpmGate.WaitAsync(deadline.Token);
                    try { response = Answer(valid.Nonce, valid.Blob, valid.Secret); }
                    finally { tpmGate.Release(); }
                }
                finally { Interlocked.Decrement(ref waiting); }
                await WriteLineAsync(stream, response, AttestationWireJson.Default.AttestQuoteResponse, deadline.Token);
                Interlocked.Increment(ref served);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or SocketException) { }
            finally { connections.Release(); }
        }
    }

    static (byte[] Nonce, byte[] Blob, byte[] Secret)? Validate(AttestQuoteRequest? request)
    {
        if (request?.Nonce is not { } hex || request.Challenge is not { CredentialBlob: { } blob, EncryptedSecret: { } secret }) return null;
        try
        {
            byte[] nonce = Convert.FromHexString(hex);
            if (nonce.Length is < AttestationBinding.MinNonceBytes or > AttestationBinding.MaxNonceBytes) return null;
            byte[] b = Convert.FromBase64String(blob), s = Convert.FromBase64String(secret);
            return b.Length is > 0 and <= 1024 && s.Length is > 0 and <= 1024 ? (nonce, b, s) : null;
        }
        catch (FormatException) { return null; }
    }

    AttestQuoteResponse Answer(byte[] nonce, byte[] blob, byte[] encryptedSecret)
    {
        byte[] key = wireGuardKey();
        // A challenge the TPM refuses gets an empty answer: the customer's check fails at ak-activation, as it should.
        byte[] activation = tpm.Activate(blob, encryptedSecret) ?? [];
        var (attest, signature) = tpm.Quote(AttestationBinding.QualifyingData(nonce, key));
        var evidence = new AttestationEvidence(Convert.ToBase64String(tpm.EkCertificate), Convert.ToBase64String(tpm.AkPublic),
            Convert.ToBase64String(activation), Convert.ToBase64String(attest), Convert.ToBase64String(signature), Convert.ToBase64String(tpm.EventLog()));
        return new AttestQuoteResponse(Convert.ToBase64String(key), evidence, akCertificate() is { } c ? Convert.ToBase64String(c) : null);
    }

    static async Task WriteLineAsync<T>(Stream stream, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, CancellationToken ct)
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(value, type);
        await stream.WriteAsync(json, ct);
        await stream.WriteAsync("\n"u8.ToArray(), ct);
        await stream.FlushAsync(ct);
    }

    /// <summary>One line of at most <see cref="Limits.MaxRequestBytes"/> bytes; null on EOF or an overlong line.</summary>
    static async Task<byte[]?> ReadLineAsync(Stream stream, CancellationToken ct)
    {
        var buffer = new byte[Limits.MaxRequestBytes];
        int length = 0;
        while (length < buffer.Length)
        {
            int read = await stream.ReadAsync(buffer.AsMemory(length), ct);
            if (read == 0) return null;
            int newline = Array.IndexOf(buffer, (byte)'\n', length, read);
            length += read;
            if (newline >= 0) return buffer[..newline];
        }
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        foreach (var l in listeners) l.Dispose();
        try { await Task.WhenAll(loops); } catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { }
        stop.Dispose();
    }
}

using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Tabula.Relay.Dns;

/// <summary>
/// The relay's in-tunnel resolver: a caching forwarder listening on the gateway addresses only (UDP and TCP, port 53),
/// answering only sources inside the tunnel pools, forwarding to the configured upstreams.
///
/// Per query: 1. source outside the pools → dropped without a reply (TCP: closed at once, nothing read);
/// 2. parse (<see cref="DnsQuery"/>): unusable → FORMERR/NOTIMP, or nothing when there is no header or it is a response;
/// 3. cache (<see cref="DnsCache"/>) → answer with aged TTLs; 4. otherwise upstreams (<see cref="DnsUpstreams"/>) →
/// answer, then cache; all failing → SERVFAIL. UDP answers over the client's size are truncated (TC) so it asks over TCP.
///
/// Privacy by construction: this code has no logger, console or file; what it keeps is counters
/// (<see cref="DnsCounters"/>), the RAM cache, and buffers that are zeroed when a query is done. Nothing it throws
/// carries a name or an address (<see cref="DnsFormatException"/> is built from a reason and an offset).
/// </summary>
public sealed class DnsForwarder : IAsyncDisposable
{
    readonly DnsOptions options;
    readonly DnsSocketFactory sockets;
    readonly DnsCache cache;
    readonly DnsUpstreams upstreams;
    readonly DnsCounterSet counters = new();
    readonly SemaphoreSlim inFlight;
    readonly CancellationTokenSource stop;
    readonly List<Socket> listeners = [];
    readonly List<Task> loops = [];
    int tcpConnections;

    DnsForwarder(DnsOptions options, DnsSocketFactory sockets, TimeProvider time, CancellationToken cancel)
    {
        this.options = options;
        this.sockets = sockets;
        cache = new DnsCache(options.CacheEntries, options.CacheBytes, options.MinTtl, options.MaxTtl, options.MaxNegativeTtl, time);
        upstreams = new DnsUpstreams(options.Upstreams, sockets, options.UpstreamTimeout, counters);
        inFlight = new SemaphoreSlim(options.MaxInFlight, options.MaxInFlight);
        stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
    }

    /// <summary>
    /// Validates <paramref name="options"/>, binds UDP and TCP on every listen address (throws <see cref="SocketException"/>
    /// when an address is not on an interface yet) and starts serving until <paramref name="cancel"/> fires or the
    /// forwarder is disposed.
    /// </summary>
    public static DnsForwarder Start(DnsOptions options, CancellationToken cancel) =>
        Start(options, static (family, type, protocol) => new Socket(family, type, protocol), TimeProvider.System, cancel);

    internal static DnsForwarder Start(DnsOptions options, DnsSocketFactory sockets, TimeProvider time, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var forwarder = new DnsForwarder(options, sockets, time, cancel);
        try
        {
            forwarder.Bind();
        }
        catch
        {
            forwarder.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
        return forwarder;
    }

    /// <summary>The totals so far.</summary>
    public DnsCounters Counters => counters.Snapshot(cache.Count);

    /// <summary>The addresses and ports bound (UDP and TCP on each).</summary>
    public IReadOnlyList<IPEndPoint> LocalEndPoints { get; private set; } = [];

    void Bind()
    {
        var bound = new List<IPEndPoint>();
        foreach (IPAddress address in options.ListenAddresses)
        {
            var endPoint = new IPEndPoint(address, options.Port);
            Socket udp = Listener(address, SocketType.Dgram, ProtocolType.Udp);
            udp.Bind(endPoint);
            Socket tcp = Listener(address, SocketType.Stream, ProtocolType.Tcp);
            tcp.Bind(endPoint);
            tcp.Listen(options.MaxTcpConnections);
            bound.Add((IPEndPoint)udp.LocalEndPoint!);
            loops.Add(Task.Run(() => UdpLoopAsync(udp)));
            loops.Add(Task.Run(() => TcpLoopAsync(tcp)));
        }
        LocalEndPoints = bound;
    }

    Socket Listener(IPAddress address, SocketType type, ProtocolType protocol)
    {
        Socket socket = sockets(address.AddressFamily, type, protocol);
        listeners.Add(socket);
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
            socket.DualMode = false;   // IPV6_V6ONLY: an IPv6 socket never takes IPv4 traffic
        if (type == SocketType.Stream)
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        return socket;
    }

    bool FromPool(EndPoint? remote) =>
        remote is IPEndPoint ip && options.ClientNetworks.Any(n => n.Contains(ip.Address));

    async Task UdpLoopAsync(Socket socket)
    {
        byte[] receive = GC.AllocateUninitializedArray<byte>(DnsLimits.MaxQueryBytes + 1);
        EndPoint any = socket.AddressFamily == AddressFamily.InterNetworkV6 ? new IPEndPoint(IPAddress.IPv6Any, 0) : new IPEndPoint(IPAddress.Any, 0);
        while (!stop.IsCancellationRequested)
        {
            SocketReceiveFromResult result;
            try
            {
                result = await socket.ReceiveFromAsync(receive, SocketFlags.None, any, stop.Token);
            }
            catch (OperationCanceledException) { break; }
            catch (ObjectDisposedException) { break; }
            catch (SocketException) { continue; }   // ICMP errors from earlier sends surface here

            int length = result.ReceivedBytes;
            if (!FromPool(result.RemoteEndPoint))
                Interlocked.Increment(ref counters.NotFromPool);
            else if (!inFlight.Wait(0))
                Interlocked.Increment(ref counters.Overloaded);
            else
            {
                byte[] request = ArrayPool<byte>.Shared.Rent(length);
                receive.AsSpan(0, length).CopyTo(request);
                _ = AnswerUdpAsync(socket, request, length, result.RemoteEndPoint);
            }
            receive.AsSpan(0, length).Clear();
        }
    }

    async Task AnswerUdpAsync(Socket socket, byte[] request, int length, EndPoint client)
    {
        byte[] response = ArrayPool<byte>.Shared.Rent(DnsLimits.MaxMessageBytes);
        try
        {
            int answer = await AnswerAsync(request.AsMemory(0, length), response, udp: true, stop.Token);
            if (answer > 0)
                await socket.SendToAsync(response.AsMemory(0, answer), SocketFlags.None, client, stop.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(request, clearArray: true);
            ArrayPool<byte>.Shared.Return(response, clearArray: true);
            inFlight.Release();
        }
    }

    async Task TcpLoopAsync(Socket listener)
    {
        while (!stop.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await listener.AcceptAsync(stop.Token);
            }
            catch (OperationCanceledException) { break; }
            catch (ObjectDisposedException) { break; }
            catch (SocketException) { continue; }

            if (!FromPool(connection.RemoteEndPoint))
            {
                Interlocked.Increment(ref counters.NotFromPool);
                Abort(connection);
            }
            else if (Interlocked.Increment(ref tcpConnections) > options.MaxTcpConnections)
            {
                Interlocked.Decrement(ref tcpConnections);
                Interlocked.Increment(ref counters.Overloaded);
                Abort(connection);
            }
            else
                _ = ServeTcpAsync(connection);
        }
    }

    /// <summary>Closes with a reset (SO_LINGER 0): nothing read, nothing answered.</summary>
    static void Abort(Socket connection)
    {
        try { connection.LingerState = new LingerOption(true, 0); }
        catch (SocketException) { }
        connection.Dispose();
    }

    /// <summary>RFC 7766: length-prefixed queries, answered in order, until the client closes or idles out.</summary>
    async Task ServeTcpAsync(Socket connection)
    {
        byte[] request = ArrayPool<byte>.Shared.Rent(DnsLimits.MaxQueryBytes);
        byte[] response = ArrayPool<byte>.Shared.Rent(2 + DnsLimits.MaxMessageBytes);
        try
        {
            for (int served = 0; served < 1000 && !stop.IsCancellationRequested; served++)
            {
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
                idle.CancelAfter(options.TcpIdleTimeout);
                await DnsUpstreams.ReceiveExactlyAsync(connection, request.AsMemory(0, 2), idle.Token);
                int length = BinaryPrimitives.ReadUInt16BigEndian(request);
                if (length > DnsLimits.MaxQueryBytes)
                {
                    Interlocked.Increment(ref counters.Malformed);
                    break;
                }
                await DnsUpstreams.ReceiveExactlyAsync(connection, request.AsMemory(0, length), idle.Token);
                if (!await inFlight.WaitAsync(options.UpstreamTimeout, stop.Token))
                {
                    Interlocked.Increment(ref counters.Overloaded);
                    break;
                }
                int answer;
                try
                {
                    answer = await AnswerAsync(request.AsMemory(0, length), response.AsMemory(2), udp: false, stop.Token);
                }
                finally
                {
                    inFlight.Release();
                }
                request.AsSpan(0, length).Clear();
                if (answer == 0)
                    break;
                BinaryPrimitives.WriteUInt16BigEndian(response, (ushort)answer);
                await connection.SendAsync(response.AsMemory(0, 2 + answer), SocketFlags.None, stop.Token);
                response.AsSpan(0, 2 + answer).Clear();
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException or DnsFormatException)
        {
        }
        finally
        {
            connection.Dispose();
            Interlocked.Decrement(ref tcpConnections);
            ArrayPool<byte>.Shared.Return(request, clearArray: true);
            ArrayPool<byte>.Shared.Return(response, clearArray: true);
        }
    }

    /// <summary>The answer to one query in <paramref name="response"/>: its length, or 0 for no answer at all.</summary>
    async ValueTask<int> AnswerAsync(ReadOnlyMemory<byte> request, Memory<byte> response, bool udp, CancellationToken cancel)
    {
        var query = new DnsQuery();
        try
        {
            try
            {
                query.Parse(request.Span);
            }
            catch (DnsFormatException e)
            {
                Interlocked.Increment(ref counters.Malformed);
                if (e.Reason is DnsFormatError.TooShort or DnsFormatError.WrongDirection)
                    return 0;
                var rcode = e.Reason == DnsFormatError.UnsupportedOpcode ? DnsRcode.NotImp : DnsRcode.FormErr;
                return Answered(DnsAnswer.WriteError(query, questionRead: false, rcode, response.Span));
            }
            if (query.HasEdns && query.EdnsVersion != 0)
                return Answered(DnsAnswer.WriteError(query, questionRead: true, DnsRcode.BadVers, response.Span));
            if (query.Class != DnsWire.ClassIn || query.Type is DnsWire.TypeAxfr or DnsWire.TypeIxfr)
                return Answered(DnsAnswer.WriteError(query, questionRead: true, DnsRcode.Refused, response.Span));

            int limit = udp ? query.UdpLimit : DnsLimits.MaxMessageBytes;
            var key = new DnsCacheKey(query);
            int length = cache.TryAnswer(key, query, response.Span, limit);
            if (length > 0)
            {
                Interlocked.Increment(ref counters.CacheHits);
                key.Clear();
                return Answered(length);
            }

            DnsAnswer? answer = await upstreams.ResolveAsync(query, cancel);
            if (answer is null)
            {
                key.Clear();
                return Answered(DnsAnswer.WriteError(query, questionRead: true, DnsRcode.ServFail, response.Span));
            }
            Interlocked.Increment(ref counters.Forwarded);
            length = answer.WriteFor(query, response.Span, 0, limit);   // before Store: an eviction zeroes the bytes
            if (!cache.Store(key, answer))
            {
                answer.Clear();
                key.Clear();
            }
            return Answered(length);
        }
        finally
        {
            query.Clear();
        }
    }

    int Answered(int length)
    {
        Interlocked.Increment(ref counters.QueriesAnswered);
        return length;
    }

    /// <summary>Stops listening, waits for the loops, zeroes the cache.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!stop.IsCancellationRequested)
            await stop.CancelAsync();
        foreach (Socket socket in listeners)
            socket.Dispose();
        try { await Task.WhenAll(loops); }
        catch (OperationCanceledException) { }
        cache.Clear();
        stop.Dispose();
    }
}

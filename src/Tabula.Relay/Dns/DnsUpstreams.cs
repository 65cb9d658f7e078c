using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Tabula.Relay.Dns;

/// <summary>Makes a socket (a seam: tests make them inside a network namespace).</summary>
internal delegate Socket DnsSocketFactory(AddressFamily family, SocketType type, ProtocolType protocol);

/// <summary>
/// Asks the upstream resolvers, in order from the last one that answered. Each attempt uses a fresh socket (so the
/// kernel picks a random source port, as for any unbound socket) and a fresh transaction id from the CSPRNG — never
/// the client's. A truncated UDP answer is asked again over TCP at the same upstream. A timeout, a network error, a
/// malformed or mismatched answer, SERVFAIL or REFUSED counts as a failure and moves on to the next upstream.
/// </summary>
internal sealed class DnsUpstreams(IReadOnlyList<IPEndPoint> upstreams, DnsSocketFactory sockets, TimeSpan attemptTimeout, DnsCounterSet counters)
{
    int preferred;

    /// <summary>The answer, or null when every upstream failed.</summary>
    public async ValueTask<DnsAnswer?> ResolveAsync(DnsQuery query, CancellationToken cancel)
    {
        byte[] request = ArrayPool<byte>.Shared.Rent(2 + DnsLimits.MaxQueryBytes + 64);
        byte[] response = ArrayPool<byte>.Shared.Rent(DnsLimits.MaxMessageBytes);
        try
        {
            int start = Volatile.Read(ref preferred);
            for (int k = 0; k < upstreams.Count; k++)
            {
                int index = (start + k) % upstreams.Count;
                DnsAnswer? answer = null;
                try
                {
                    answer = await ExchangeAsync(upstreams[index], query, request, response, cancel);
                }
                catch (Exception e) when (e is DnsFormatException or SocketException or IOException
                                          || (e is OperationCanceledException && !cancel.IsCancellationRequested))
                {
                }
                if (answer is not null && answer.Rcode is not (DnsRcode.ServFail or DnsRcode.Refused or DnsRcode.NotImp or DnsRcode.FormErr))
                {
                    Volatile.Write(ref preferred, index);
                    return answer;
                }
                Interlocked.Increment(ref counters.UpstreamFailures);
                if (k == upstreams.Count - 1 && answer is not null)
                    return answer;   // the last upstream's own SERVFAIL/REFUSED is passed on
                answer?.Clear();
            }
            return null;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(request, clearArray: true);
            ArrayPool<byte>.Shared.Return(response, clearArray: true);
        }
    }

    async ValueTask<DnsAnswer> ExchangeAsync(IPEndPoint upstream, DnsQuery query, byte[] request, byte[] response, CancellationToken cancel)
    {
        ushort id = (ushort)RandomNumberGenerator.GetInt32(0, 65536);
        int length = query.WriteUpstream(request.AsSpan(2), id);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(attemptTimeout);
        int received = await UdpAsync(upstream, request.AsMemory(2, length), response, id, timeout.Token);
        var answer = DnsAnswer.Parse(response.AsSpan(0, received), id, query.Name, query.Type, query.Class);
        if (!answer.Truncated)
            return answer;
        answer.Clear();

        id = (ushort)RandomNumberGenerator.GetInt32(0, 65536);
        length = query.WriteUpstream(request.AsSpan(2), id);
        BinaryPrimitives.WriteUInt16BigEndian(request, (ushort)length);
        timeout.CancelAfter(attemptTimeout);
        received = await TcpAsync(upstream, request.AsMemory(0, 2 + length), response, timeout.Token);
        return DnsAnswer.Parse(response.AsSpan(0, received), id, query.Name, query.Type, query.Class);
    }

    async ValueTask<int> UdpAsync(IPEndPoint upstream, ReadOnlyMemory<byte> request, Memory<byte> response, ushort id, CancellationToken cancel)
    {
        using Socket socket = sockets(upstream.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        // A connected UDP socket only receives from the upstream's address and port; the id check does the rest.
        await socket.ConnectAsync(upstream, cancel);
        await socket.SendAsync(request, SocketFlags.None, cancel);
        for (int i = 0; i < DnsLimits.MaxStrayDatagrams; i++)
        {
            int received = await socket.ReceiveAsync(response, SocketFlags.None, cancel);
            if (received >= DnsLimits.HeaderBytes && DnsWire.Id(response.Span) == id)
                return received;
        }
        DnsFormatException.Throw(DnsFormatError.Mismatch, 0);
        return 0;
    }

    async ValueTask<int> TcpAsync(IPEndPoint upstream, ReadOnlyMemory<byte> request, Memory<byte> response, CancellationToken cancel)
    {
        using Socket socket = sockets(upstream.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(upstream, cancel);
        await socket.SendAsync(request, SocketFlags.None, cancel);
        await ReceiveExactlyAsync(socket, response[..2], cancel);
        int length = BinaryPrimitives.ReadUInt16BigEndian(response.Span);
        await ReceiveExactlyAsync(socket, response[..length], cancel);
        return length;
    }

    /// <summary>Reads exactly <paramref name="buffer"/>'s length; a closed connection is <see cref="DnsFormatError.Truncated"/>.</summary>
    internal static async ValueTask ReceiveExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken cancel)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int read = await socket.ReceiveAsync(buffer[total..], SocketFlags.None, cancel);
            if (read == 0)
                DnsFormatException.Throw(DnsFormatError.Truncated, total);
            total += read;
        }
    }
}

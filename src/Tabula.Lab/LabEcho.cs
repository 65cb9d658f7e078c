using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Tabula.Lab;

/// <summary>Why the echo server refused a request (the status line says it too).</summary>
public enum EchoRequestError
{
    /// <summary>The request head did not end within <see cref="LabEcho.MaxHeadBytes"/>.</summary>
    HeadTooLarge,
    /// <summary>The request line is not "METHOD TARGET HTTP/1.x".</summary>
    Malformed,
    /// <summary>Not GET (or HEAD).</summary>
    MethodNotAllowed,
    /// <summary>No such path.</summary>
    NotFound,
    /// <summary>/bytes/N with N not a decimal number from 0 to <see cref="LabEcho.MaxBytes"/>.</summary>
    BadCount,
}

/// <summary>A parsed echo request: what to answer, or why not.</summary>
/// <param name="Head">HEAD: the same status and headers, no body.</param>
/// <param name="Path">"/ip" or "/bytes".</param>
/// <param name="Count">For /bytes/N, N.</param>
/// <param name="Error">Set when the request is refused.</param>
public sealed record EchoRequest(bool Head, string Path, long Count, EchoRequestError? Error)
{
    /// <summary>
    /// Parses the request head (the bytes up to and including the blank line, or what arrived of it). Never throws:
    /// anything else is an <see cref="EchoRequestError"/>.
    /// </summary>
    public static EchoRequest Parse(ReadOnlySpan<byte> head)
    {
        int end = head.IndexOf("\r\n"u8);
        if (end < 0)
            return Refused(EchoRequestError.Malformed);
        Span<Range> parts = stackalloc Range[4];
        var line = head[..end];
        string text = Encoding.ASCII.GetString(line);
        int n = text.AsSpan().Split(parts, ' ');
        if (n != 3 || !text[parts[2]].StartsWith("HTTP/1.", StringComparison.Ordinal))
            return Refused(EchoRequestError.Malformed);
        string method = text[parts[0]], target = text[parts[1]];
        bool isHead = method == "HEAD";
        if (method != "GET" && !isHead)
            return Refused(EchoRequestError.MethodNotAllowed);
        int query = target.IndexOf('?');
        if (query >= 0)
            target = target[..query];
        if (target == "/ip")
            return new EchoRequest(isHead, "/ip", 0, null);
        if (!target.StartsWith("/bytes/", StringComparison.Ordinal))
            return Refused(EchoRequestError.NotFound);
        string count = target["/bytes/".Length..];
        // Digits only (no sign, no spaces), at most 9 of them: 100 000 000 is the largest allowed.
        if (count.Length is 0 or > 9 || !count.All(char.IsAsciiDigit)
            || !long.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out long bytes) || bytes > LabEcho.MaxBytes)
            return Refused(EchoRequestError.BadCount);
        return new EchoRequest(isHead, "/bytes", bytes, null);

        static EchoRequest Refused(EchoRequestError error) => new(false, "", 0, error);
    }
}

/// <summary>
/// `tabula lab echo`: the lab internet's echo host (docs/lab.md). HTTP/1.1 on one dual-stack socket created inside the
/// echo namespace: <c>GET /ip</c> answers the caller's address as plain text (IPv4 callers as dotted quads, no newline);
/// <c>GET /bytes/N</c> answers N bytes (N ≤ 100 000 000), byte i being i mod 251, streamed from one 64 KiB buffer so
/// the memory does not grow with N. Anything else gets 400, 404 or 405 with a one-line reason. One request per
/// connection (Connection: close). Bounded: at most <see cref="MaxConnections"/> at once (more are closed at once),
/// <see cref="MaxHeadBytes"/> and <see cref="HeadTimeout"/> for the request head, <see cref="ResponseTimeout"/> per
/// response. Logs nothing per request.
/// </summary>
public static class LabEcho
{
    /// <summary>The largest /bytes/N.</summary>
    public const long MaxBytes = 100_000_000;

    /// <summary>The largest request head read.</summary>
    public const int MaxHeadBytes = 8192;

    /// <summary>Connections served at once.</summary>
    public const int MaxConnections = 64;

    /// <summary>How long a client has to send its request head.</summary>
    public static readonly TimeSpan HeadTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How long one response may take (100 MB through a relay under TCG is slow).</summary>
    public static readonly TimeSpan ResponseTimeout = TimeSpan.FromMinutes(10);

    /// <summary>The byte at offset <paramref name="offset"/> of a /bytes answer.</summary>
    public static byte ByteAt(long offset) => (byte)(offset % 251);

    /// <summary>Serves on <paramref name="port"/> (all addresses, both families) until cancelled; the listening socket is
    /// created inside namespace <paramref name="ns"/> when given.</summary>
    public static async Task RunAsync(string? ns, int port, Action<string> say, CancellationToken ct)
    {
        using var listener = ns is null ? NewListener() : LabNetwork.RunInside(ns, NewListener);
        listener.Bind(new IPEndPoint(IPAddress.IPv6Any, port));
        listener.Listen(128);
        say($"echo: listening on [::]:{port} (IPv4 and IPv6){(ns is null ? "" : " in " + ns)}");
        using var slots = new SemaphoreSlim(MaxConnections);
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try { client = await listener.AcceptAsync(ct); }
            catch (OperationCanceledException) { break; }
            if (!slots.Wait(0))
            {
                client.Dispose();   // full: the client sees a reset, never an unbounded queue
                continue;
            }
            _ = ServeAsync(client, slots, ct);
        }

        static Socket NewListener() => new(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp) { DualMode = true };
    }

    static async Task ServeAsync(Socket client, SemaphoreSlim slots, CancellationToken ct)
    {
        try
        {
            using (client)
            {
                client.NoDelay = true;
                var head = await ReadHeadAsync(client, ct);
                var caller = ((IPEndPoint)client.RemoteEndPoint!).Address;
                if (caller.IsIPv4MappedToIPv6)
                    caller = caller.MapToIPv4();
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(ResponseTimeout);
                await AnswerAsync(client, head, caller, timeout.Token);
                client.Shutdown(SocketShutdown.Send);
            }
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException) { }
        finally
        {
            slots.Release();
        }
    }

    /// <summary>The request head: bytes up to the blank line, or what arrived within the limits.</summary>
    static async Task<byte[]> ReadHeadAsync(Socket client, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(HeadTimeout);
        byte[] buffer = new byte[MaxHeadBytes];
        int length = 0;
        while (length < buffer.Length)
        {
            int n = await client.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, timeout.Token);
            if (n == 0)
                break;
            length += n;
            if (buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8) >= 0)
                return buffer[..length];
        }
        return length == buffer.Length ? [] : buffer[..length];   // [] parses as malformed; a full buffer is too large
    }

    static async Task AnswerAsync(Socket client, byte[] head, IPAddress caller, CancellationToken ct)
    {
        var request = head.Length == 0 ? new EchoRequest(false, "", 0, EchoRequestError.HeadTooLarge) : EchoRequest.Parse(head);
        switch (request.Error)
        {
            case EchoRequestError.HeadTooLarge:
                await SendAsync(client, 431, "Request Header Fields Too Large", $"request head over {MaxHeadBytes} bytes\n", false, ct);
                return;
            case EchoRequestError.Malformed:
                await SendAsync(client, 400, "Bad Request", "not an HTTP/1.x request line\n", false, ct);
                return;
            case EchoRequestError.MethodNotAllowed:
                await SendAsync(client, 405, "Method Not Allowed", "GET or HEAD only\n", false, ct);
                return;
            case EchoRequestError.NotFound:
                await SendAsync(client, 404, "Not Found", "GET /ip or GET /bytes/N\n", false, ct);
                return;
            case EchoRequestError.BadCount:
                await SendAsync(client, 400, "Bad Request", $"/bytes/N: N is a decimal number from 0 to {MaxBytes}\n", false, ct);
                return;
        }
        if (request.Path == "/ip")
        {
            await SendAsync(client, 200, "OK", caller.ToString(), request.Head, ct);
            return;
        }
        await client.SendAsync(Header(200, "OK", "application/octet-stream", request.Count), SocketFlags.None, ct);
        if (request.Head)
            return;
        byte[] chunk = ArrayPool<byte>.Shared.Rent(251 * 261);   // a whole number of periods: every chunk starts at offset 0 mod 251
        try
        {
            int period = 251 * 261;
            for (int i = 0; i < period; i++)
                chunk[i] = ByteAt(i);
            for (long sent = 0; sent < request.Count;)
            {
                int n = (int)Math.Min(period, request.Count - sent);
                await client.SendAsync(chunk.AsMemory(0, n), SocketFlags.None, ct);
                sent += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    static async Task SendAsync(Socket client, int status, string reason, string body, bool headOnly, CancellationToken ct)
    {
        byte[] text = Encoding.ASCII.GetBytes(body);
        await client.SendAsync(Header(status, reason, "text/plain; charset=us-ascii", text.Length), SocketFlags.None, ct);
        if (!headOnly)
            await client.SendAsync(text, SocketFlags.None, ct);
    }

    static byte[] Header(int status, string reason, string type, long length) => Encoding.ASCII.GetBytes(
        $"HTTP/1.1 {status.ToString(CultureInfo.InvariantCulture)} {reason}\r\nContent-Type: {type}\r\n" +
        $"Content-Length: {length.ToString(CultureInfo.InvariantCulture)}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n");
}

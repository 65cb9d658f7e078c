using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Tabula.Tls;
using static Tabula.Lab.LabRunner;

namespace Tabula.Lab;

/// <summary>
/// The `replayed-ticket` attacker of `lab attack`: someone who holds the fleet controller's TLS key (not its ticket key)
/// and sits on the path of one relay. An nf_tables rule in the lab namespace (table <c>ip tabula_lab_attack</c>, made
/// with the nft tool: this is the lab's host side, not the relay) turns that relay's connections to the controller's
/// port into connections to this listener, which terminates TLS with the controller's own certificate and key.
/// While recording it passes each boot-ticket request to the real controller and keeps the tickets it answered; once
/// <see cref="Replaying"/> it answers every request with the first ticket it kept (a ticket issued for an earlier boot
/// attempt's nonce). Every answer closes its connection, so each request is a connection of its own.
/// </summary>
internal sealed class LabTicketInterceptor : IAsyncDisposable
{
    /// <summary>The listener's port, beside the controller's on the lab's host address.</summary>
    public const int Port = 9444;

    const string Table = "tabula_lab_attack";
    const int MaxHeaderBytes = 16 * 1024, MaxBodyBytes = 16 * 1024;
    static readonly TimeSpan ConnectionTimeout = TimeSpan.FromSeconds(30);

    readonly string ns;
    readonly Socket listener;
    readonly X509Certificate2 certificate;
    readonly HttpClient controller;
    readonly CancellationTokenSource stop = new();
    readonly Task accepting;
    readonly Lock gate = new();
    readonly List<(byte[] Body, string ContentType)> tickets = [];
    int replayed;

    LabTicketInterceptor(string ns, Socket listener, X509Certificate2 certificate, HttpClient controller)
    {
        this.ns = ns;
        this.listener = listener;
        this.certificate = certificate;
        this.controller = controller;
        accepting = AcceptAsync(stop.Token);
    }

    /// <summary>When true, every ticket request gets the first recorded ticket instead of a fresh one.</summary>
    public bool Replaying { get; set; }

    /// <summary>Tickets recorded from the real controller so far.</summary>
    public int Recorded { get { lock (gate) return tickets.Count; } }

    /// <summary>Requests answered with a recorded ticket.</summary>
    public int Replayed => Volatile.Read(ref replayed);

    /// <summary>Starts listening in <paramref name="ns"/> and redirects <paramref name="relay"/>'s connections to the controller.</summary>
    public static LabTicketInterceptor Start(string ns, IPAddress relay, string fleetTlsDirectory)
    {
        var certificate = X509Certificate2.CreateFromPemFile(Path.Combine(fleetTlsDirectory, DevCertificateAuthority.ServerCertificateFile),
            Path.Combine(fleetTlsDirectory, DevCertificateAuthority.ServerKeyFile));
        var pinned = PinnedTlsRoots.LoadPemFile(Path.Combine(fleetTlsDirectory, DevCertificateAuthority.CaCertificateFile), TimeProvider.System);
        var controller = PinnedHttp.Client(new Uri($"https://{LabNetwork.HostAddress}:{FleetPort}"), pinned, TimeSpan.FromSeconds(20),
            configure: handler => handler.ConnectCallback = async (context, token) =>
            {
                var socket = LabNetwork.RunInside(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                try
                {
                    await socket.ConnectAsync(IPAddress.Parse(context.DnsEndPoint.Host), context.DnsEndPoint.Port, token);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            });
        Socket? listener = null;
        try
        {
            listener = LabNetwork.RunInside(ns, () =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                socket.Bind(new IPEndPoint(LabNetwork.HostAddress, Port));
                socket.Listen(16);
                return socket;
            });
            DeleteTable(ns);
            string rules = $$"""
                table ip {{Table}} {
                  chain prerouting {
                    type nat hook prerouting priority dstnat; policy accept;
                    ip saddr {{relay}} ip daddr {{LabNetwork.HostAddress}} tcp dport {{FleetPort}} dnat to {{LabNetwork.HostAddress}}:{{Port}}
                  }
                }

                """;
            HostProcess.Run(LabNetwork.Exec(ns, ["nft", "-f", "-"]), rules);
            return new LabTicketInterceptor(ns, listener, certificate, controller);
        }
        catch
        {
            listener?.Dispose();
            controller.Dispose();
            certificate.Dispose();
            throw;
        }
    }

    static void DeleteTable(string ns) => HostProcess.TryRun(LabNetwork.Exec(ns, ["nft", "delete", "table", "ip", Table]));

    async Task AcceptAsync(CancellationToken ct)
    {
        var connections = new List<Task>();
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try { client = await listener.AcceptAsync(ct); }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { break; }
            connections.RemoveAll(t => t.IsCompleted);
            connections.Add(ServeAsync(client, ct));
        }
        await Task.WhenAll(connections);
    }

    async Task ServeAsync(Socket client, CancellationToken stopping)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        timeout.CancelAfter(ConnectionTimeout);
        var ct = timeout.Token;
        try
        {
            await using var tls = new SslStream(new NetworkStream(client, ownsSocket: true));
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificate = certificate,
                ApplicationProtocols = [SslApplicationProtocol.Http11],
            }, ct);
            var (method, path, contentType, body) = await ReadRequestAsync(tls, ct);
            (int status, byte[] answer, string answerType) = method == "POST" && path == "/boot/v1/ticket"
                ? await TicketAsync(body, contentType, ct)
                : (404, "not here\n"u8.ToArray(), "text/plain");
            string head = $"HTTP/1.1 {status.ToString(CultureInfo.InvariantCulture)} {(status == 200 ? "OK" : "Error")}\r\n" +
                          $"Content-Type: {answerType}\r\nContent-Length: {answer.Length.ToString(CultureInfo.InvariantCulture)}\r\nConnection: close\r\n\r\n";
            await tls.WriteAsync(Encoding.ASCII.GetBytes(head), ct);
            await tls.WriteAsync(answer, ct);
            await tls.FlushAsync(ct);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or System.Security.Authentication.AuthenticationException
                                       or FormatException or HttpRequestException or ObjectDisposedException)
        {
            // One connection of a machine under attack; the rounds judge by the machine's console, not by this.
        }
    }

    async Task<(int Status, byte[] Body, string ContentType)> TicketAsync(byte[] request, string? contentType, CancellationToken ct)
    {
        if (Replaying)
        {
            lock (gate)
            {
                if (tickets.Count > 0)
                {
                    Interlocked.Increment(ref replayed);
                    return (200, tickets[0].Body, tickets[0].ContentType);
                }
            }
        }
        using var content = new ByteArrayContent(request);
        content.Headers.TryAddWithoutValidation("Content-Type", contentType ?? "application/json");
        using var response = await controller.PostAsync("/boot/v1/ticket", content, ct);
        byte[] body = await response.Content.ReadAsByteArrayAsync(ct);
        string type = response.Content.Headers.ContentType?.ToString() ?? "application/json";
        if (response.StatusCode == HttpStatusCode.OK && body.Length <= MaxBodyBytes)
            lock (gate)
                tickets.Add((body, type));
        return ((int)response.StatusCode, body, type);
    }

    /// <summary>Reads one HTTP/1.1 request with a Content-Length body (stboot's ticket client sends exactly that), bounded.</summary>
    static async Task<(string Method, string Path, string? ContentType, byte[] Body)> ReadRequestAsync(Stream stream, CancellationToken ct)
    {
        byte[] buffer = new byte[MaxHeaderBytes + MaxBodyBytes];
        int filled = 0, headerEnd;
        while ((headerEnd = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8)) < 0)
        {
            if (filled >= MaxHeaderBytes)
                throw new FormatException("request head too large");
            int n = await stream.ReadAsync(buffer.AsMemory(filled, MaxHeaderBytes - filled), ct);
            if (n == 0)
                throw new FormatException("connection closed in the request head");
            filled += n;
        }
        string[] lines = Encoding.ASCII.GetString(buffer, 0, headerEnd).Split("\r\n");
        string[] start = lines[0].Split(' ');
        if (start.Length != 3)
            throw new FormatException("bad request line");
        int length = 0;
        string? contentType = null;
        foreach (string line in lines.Skip(1))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
                continue;
            string name = line[..colon].Trim(), value = line[(colon + 1)..].Trim();
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)
                && (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out length) || length > MaxBodyBytes))
                throw new FormatException("bad Content-Length");
            if (name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase))
                contentType = value;
        }
        int bodyStart = headerEnd + 4;
        while (filled - bodyStart < length)
        {
            int n = await stream.ReadAsync(buffer.AsMemory(filled, bodyStart + length - filled), ct);
            if (n == 0)
                throw new FormatException("connection closed in the body");
            filled += n;
        }
        return (start[0], start[1], contentType, buffer[bodyStart..(bodyStart + length)]);
    }

    /// <summary>Removes the redirect first (the relay talks to the real controller again), then stops listening.</summary>
    public async ValueTask DisposeAsync()
    {
        DeleteTable(ns);
        await stop.CancelAsync();
        listener.Dispose();
        await accepting;
        controller.Dispose();
        certificate.Dispose();
        stop.Dispose();
    }
}

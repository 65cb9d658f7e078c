using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Tabula.EndToEnd.Tests.Harness;

/// <summary>
/// A tiny HTTP/1.1 server for one fixed body, listening inside a test namespace: the listening socket is created on
/// a thread that entered the namespace, then served from the thread pool. Requests are recorded.
/// </summary>
public sealed class StaticHttpServer : IDisposable
{
    readonly Socket listener;
    readonly byte[] body;
    readonly CancellationTokenSource stop = new();
    readonly Task loop;

    StaticHttpServer(Socket listener, byte[] body)
    {
        this.listener = listener;
        this.body = body;
        loop = Task.Run(AcceptLoop);
    }

    /// <summary>Request lines received ("GET /path HTTP/1.1").</summary>
    public List<string> Requests { get; } = [];

    /// <summary>Starts the server on <paramref name="address"/>:<paramref name="port"/> inside the network's namespace.</summary>
    public static StaticHttpServer Start(TapNetwork network, int port, byte[] body)
    {
        Socket socket = network.Namespace.RunInside(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(network.HostAddress, port));
            s.Listen(16);
            return s;
        });
        return new StaticHttpServer(socket, body);
    }

    async Task AcceptLoop()
    {
        while (!stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await listener.AcceptAsync(stop.Token); }
            catch (Exception) { return; }
            _ = Task.Run(() => Serve(client));
        }
    }

    async Task Serve(Socket client)
    {
        using (client)
        {
            var request = new StringBuilder();
            byte[] buffer = new byte[4096];
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            try
            {
                while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal) && request.Length < 65536)
                {
                    int n = await client.ReceiveAsync(buffer, timeout.Token);
                    if (n == 0)
                        return;
                    request.Append(Encoding.ASCII.GetString(buffer, 0, n));
                }
                lock (Requests)
                    Requests.Add(request.ToString().Split("\r\n")[0]);
                byte[] head = Encoding.ASCII.GetBytes(
                    $"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
                await client.SendAsync(head, timeout.Token);
                await client.SendAsync(body, timeout.Token);
                client.Shutdown(SocketShutdown.Send);
            }
            catch (Exception) when (stop.IsCancellationRequested || timeout.IsCancellationRequested) { }
            catch (SocketException) { }
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        stop.Cancel();
        listener.Dispose();
        try { loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        stop.Dispose();
    }
}

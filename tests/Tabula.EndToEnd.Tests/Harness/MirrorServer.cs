using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Tabula.EndToEnd.Tests.Harness;

/// <summary>
/// A plain HTTP/1.1 server inside a test namespace whose answers the test decides per request (a misbehaving mirror:
/// it serves tampered, under-signed or expired packages, or 404). The listening socket is created on a thread that
/// entered the namespace; request lines are recorded.
/// </summary>
public sealed class MirrorServer : IDisposable
{
    readonly Socket listener;
    readonly Func<string, (int Status, byte[] Body)> answer;
    readonly CancellationTokenSource stop = new();
    readonly Task loop;

    MirrorServer(Socket listener, Func<string, (int, byte[])> answer)
    {
        this.listener = listener;
        this.answer = answer;
        loop = Task.Run(AcceptLoop);
    }

    /// <summary>Request lines received ("GET /path HTTP/1.1").</summary>
    public List<string> Requests { get; } = [];

    /// <summary>Starts on the namespace side of the tap; <paramref name="answer"/> maps a path to status and body.</summary>
    public static MirrorServer Start(TapNetwork network, int port, Func<string, (int Status, byte[] Body)> answer)
    {
        Socket socket = network.Namespace.RunInside(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(network.HostAddress, port));
            s.Listen(16);
            return s;
        });
        return new MirrorServer(socket, answer);
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
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            try
            {
                while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal) && request.Length < 65536)
                {
                    int n = await client.ReceiveAsync(buffer, timeout.Token);
                    if (n == 0)
                        return;
                    request.Append(Encoding.ASCII.GetString(buffer, 0, n));
                }
                string line = request.ToString().Split("\r\n")[0];
                lock (Requests)
                    Requests.Add(line);
                string path = line.Split(' ') is [_, var p, ..] ? p : "/";
                var (status, body) = answer(path);
                byte[] head = Encoding.ASCII.GetBytes(
                    $"HTTP/1.1 {status} {(status == 200 ? "OK" : "Not Found")}\r\nContent-Type: application/octet-stream\r\n" +
                    $"Content-Length: {body.Length}\r\nConnection: close\r\n\r\n");
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

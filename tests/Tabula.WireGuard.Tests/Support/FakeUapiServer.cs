using System.Net.Sockets;
using System.Text;

namespace Tabula.WireGuard.Tests.Support;

/// <summary>
/// A misbehaving UAPI daemon on a unix socket in a temporary directory (Npgsql's PgPostmasterMock idea): each
/// accepted connection is handed to a script that reads and writes raw bytes, so tests can inject early errnos,
/// truncated replies, oversized lines and slow readers without root.
/// </summary>
public sealed class FakeUapiServer : IAsyncDisposable
{
    readonly Socket listener;
    readonly Task loop;
    readonly CancellationTokenSource stop = new();

    public FakeUapiServer(string interfaceName, Func<Socket, CancellationToken, Task> script)
    {
        Directory = Path.Combine(Path.GetTempPath(), "tbwg-uapi-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(Directory);
        InterfaceName = interfaceName;
        listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(Path.Combine(Directory, interfaceName + ".sock")));
        listener.Listen(8);
        loop = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                Socket client;
                try { client = await listener.AcceptAsync(stop.Token); }
                catch (Exception) { return; }
                try { await script(client, stop.Token); }
                catch (Exception) { /* the script's peer went away */ }
                finally { client.Dispose(); }
            }
        });
    }

    public string Directory { get; }

    public string InterfaceName { get; }

    /// <summary>Reads until the request's closing empty line; returns the text (without it) or null at EOF.</summary>
    public static async Task<string?> ReadRequestAsync(Socket client, CancellationToken ct, long? stopAfterBytes = null)
    {
        var text = new StringBuilder();
        var buffer = new byte[65536];
        long total = 0;
        while (true)
        {
            int n = await client.ReceiveAsync(buffer, ct);
            if (n == 0)
                return null;
            total += n;
            text.Append(Encoding.ASCII.GetString(buffer, 0, n));
            if (text.Length >= 2 && text[^1] == '\n' && (text.Length == 1 || text[^2] == '\n'))
                return text.ToString(0, text.Length - 1);
            if (stopAfterBytes is { } limit && total >= limit)
                return text.ToString();
        }
    }

    public static Task SendAsync(Socket client, string text, CancellationToken ct) =>
        client.SendAsync(Encoding.ASCII.GetBytes(text), ct).AsTask();

    public async ValueTask DisposeAsync()
    {
        stop.Cancel();
        listener.Dispose();
        try { await loop; } catch (Exception) { }
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }
}

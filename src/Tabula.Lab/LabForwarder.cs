using System.Net;
using System.Net.Sockets;

namespace Tabula.Lab;

/// <summary>
/// `tabula lab forward`: makes the fleet controller (dashboard and staff API), which listens only inside the lab
/// namespace, reachable from the host at a loopback port. Each accepted connection gets a socket created inside the
/// namespace and connected to the controller; bytes are copied both ways untouched (TLS ends at the controller, whose
/// certificate also names 127.0.0.1). Only loopback listens, so nothing outside the machine reaches the lab.
/// </summary>
public static class LabForwarder
{
    /// <summary>Forwards connections on <paramref name="listen"/> to <paramref name="target"/> inside <paramref name="ns"/> until cancelled.</summary>
    public static async Task RunAsync(string ns, IPEndPoint listen, IPEndPoint target, CancellationToken ct)
    {
        if (!IPAddress.IsLoopback(listen.Address))
            throw new LabException($"the forwarder listens on loopback only, not {listen}");
        using var listener = new TcpListener(listen);
        listener.Start();
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try { client = await listener.AcceptSocketAsync(ct); }
            catch (OperationCanceledException) { break; }
            _ = ServeAsync(ns, client, target, ct);
        }
    }

    static async Task ServeAsync(string ns, Socket client, IPEndPoint target, CancellationToken ct)
    {
        using (client)
        {
            Socket upstream;
            try { upstream = LabNetwork.RunInside(ns, () => new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp)); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or Linux.LinuxException) { return; }
            using (upstream)
            {
                try
                {
                    await upstream.ConnectAsync(target, ct);
                    using var a = new NetworkStream(client, ownsSocket: false);
                    using var b = new NetworkStream(upstream, ownsSocket: false);
                    var up = CopyThenShutdownAsync(a, upstream, b, ct);
                    var down = CopyThenShutdownAsync(b, client, a, ct);
                    await Task.WhenAll(up, down);
                }
                catch (Exception e) when (e is SocketException or IOException or OperationCanceledException) { }
            }
        }
    }

    static async Task CopyThenShutdownAsync(Stream from, Socket toSocket, Stream to, CancellationToken ct)
    {
        try { await from.CopyToAsync(to, ct); }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException) { }
        try { toSocket.Shutdown(SocketShutdown.Send); }
        catch (SocketException) { }
        catch (ObjectDisposedException) { }
    }
}

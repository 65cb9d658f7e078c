using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Tabula.Provisioning.Transport;

/// <summary>Settings of the TLS transport that come from the server's limits.</summary>
internal sealed record TlsTransportOptions(TimeSpan HandshakeTimeout, int MaxResponseBufferBytes)
{
    /// <summary>Response blocks shared by all connections; enough for a few hundred busy downloads.</summary>
    public BlockPool ResponseBlocks { get; } = new(maxRetained: 1024);
}

/// <summary>
/// Kestrel's transport for the HTTPS listener: TCP sockets whose TLS OpenSSL terminates on the socket
/// (<see cref="TlsSocketConnection"/>). Registered in place of Kestrel's socket transport when the server listens
/// on https; Kestrel's HTTP/1.1 and HTTP/2 run unchanged on top and learn TLS and ALPN from connection features.
/// </summary>
internal sealed class TlsSocketTransportFactory(TlsContext context, TlsTransportOptions options)
    : IConnectionListenerFactory, IConnectionListenerFactorySelector, IDisposable
{
    readonly Lazy<ReadinessReactor> _reactor = new(() => new ReadinessReactor());

    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint;

    /// <summary>When the host is disposed (after Kestrel stopped): the readiness thread and the OpenSSL context
    /// (connections still alive hold their own reference to it).</summary>
    public void Dispose()
    {
        if (_reactor.IsValueCreated)
            _reactor.Value.Dispose();
        context.Dispose();
    }

    /// <summary>
    /// Sets up a listener for connections from this transport. It tells Kestrel they are TLS although no
    /// <c>UseHttps</c> middleware runs (otherwise Kestrel turns an HTTP/1.1 + HTTP/2 endpoint into HTTP/1.1 only
    /// at bind, "TLS is not enabled", and reports the address as http://), and it holds each connection until its
    /// handshake is done, because Kestrel picks HTTP/1.1 or HTTP/2 from the ALPN result as soon as it starts.
    /// </summary>
    public static void UseTransportTls(ListenOptions listen)
    {
        SetIsTls(listen, true);
        listen.Use(next => async connection =>
        {
            if (connection.Features.Get<TlsSocketConnection>() is { } tls && !await tls.Handshake)
                return;   // the handshake failed or timed out: nothing for HTTP to do
            await next(connection);
        });
    }

    // ListenOptions.IsTls has an internal setter (UseHttps sets it); an UnsafeAccessor works under NativeAOT.
    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "set_IsTls")]
    static extern void SetIsTls(ListenOptions listen, bool value);

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not IPEndPoint ip)
            throw new NotSupportedException($"the TLS transport listens on IP endpoints only, not {endpoint}");
        var socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (ip.Address.Equals(IPAddress.IPv6Any))
                socket.DualMode = true;
            socket.Bind(ip);
            socket.Listen(512);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            socket.Dispose();
            throw new AddressInUseException(e.Message, e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return ValueTask.FromResult<IConnectionListener>(new Listener(socket, context, _reactor.Value, options));
    }

    sealed class Listener(Socket socket, TlsContext context, ReadinessReactor reactor, TlsTransportOptions options)
        : IConnectionListener
    {
        public EndPoint EndPoint { get; } = socket.LocalEndPoint!;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                Socket accepted;
                try
                {
                    accepted = await socket.AcceptAsync(cancellationToken);
                }
                catch (ObjectDisposedException)
                {
                    return null;   // unbound
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.OperationAborted)
                {
                    return null;
                }
                catch (SocketException)
                {
                    continue;   // the client reset before we accepted: take the next one
                }
                try
                {
                    return TlsSocketConnection.Start(accepted, context, reactor, options);
                }
                catch (TlsTransportException)
                {
                    accepted.Dispose();   // out of memory in OpenSSL or epoll: refuse this one, keep listening
                }
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            socket.Dispose();
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            socket.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}

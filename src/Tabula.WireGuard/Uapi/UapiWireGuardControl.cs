using System.Buffers;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Tabula.Linux;

namespace Tabula.WireGuard.Uapi;

/// <summary>
/// Configures a userspace WireGuard implementation (wireguard-go, boringtun, …) through the cross-platform
/// configuration protocol on its unix socket, <c>/var/run/wireguard/&lt;interface&gt;.sock</c>
/// (https://www.wireguard.com/xplatform/). Implements <see cref="IWireGuardControl"/>; see its contract.
/// </summary>
/// <remarks>
/// <para>Like <c>wg</c>, each call opens its own connection and sends one operation. A <c>set=1</c> request is
/// written while <see cref="DeviceUpdate.Peers"/> is enumerated, through one pooled
/// <see cref="Limits.UapiWriteBufferBytes"/> buffer: the daemon applies lines as it reads them, so a million peers
/// stream through in constant client memory.</para>
/// <para>When the daemon refuses a line it answers <c>errno=-N</c> at once and closes the connection, and our next
/// write fails with EPIPE. The client then reads the errno already waiting in its receive queue and throws
/// <see cref="WireGuardDeviceException"/> with it, rather than an I/O error.</para>
/// <para>The socket path is not per network namespace: daemons in two namespaces of one host need distinct
/// interface names.</para>
/// </remarks>
public sealed class UapiWireGuardControl : IWireGuardControl
{
    /// <summary>Where userspace implementations put their sockets (wireguard-go ipc/uapi_unix.go socketDirectory).</summary>
    public const string DefaultSocketDirectory = "/var/run/wireguard";

    /// <summary>Controls <paramref name="interfaceName"/> through <c><paramref name="socketDirectory"/>/&lt;name&gt;.sock</c>.</summary>
    public UapiWireGuardControl(string interfaceName, string socketDirectory = DefaultSocketDirectory)
    {
        InterfaceName = InterfaceNames.Validate(interfaceName, nameof(interfaceName));
        ArgumentException.ThrowIfNullOrEmpty(socketDirectory);
        SocketPath = Path.Combine(socketDirectory, interfaceName + ".sock");
    }

    /// <inheritdoc />
    public string InterfaceName { get; }

    /// <summary>The unix socket this instance connects to.</summary>
    public string SocketPath { get; }

    /// <inheritdoc />
    public async Task ApplyAsync(DeviceUpdate update, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(update);
        using var socket = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Max(Limits.UapiWriteBufferBytes, Limits.UapiReadBufferBytes));
        try
        {
            var encoder = new UapiSetEncoder(buffer, Limits.UapiWriteBufferBytes);
            bool sent = await SendSetAsync(stream, encoder, update, cancellationToken).ConfigureAwait(false);
            int? errno = await ReadSetReplyAsync(stream, buffer, sent, cancellationToken).ConfigureAwait(false);
            if (errno is not { } code)
                throw new WireGuardUnavailableException(UnavailableReason.NoDaemon, InterfaceName);
            if (code != 0)
                throw new WireGuardDeviceException($"uapi set {InterfaceName}", Math.Abs(code));
        }
        finally
        {
            // The buffer held private and preshared keys in hex.
            Array.Clear(buffer, 0, Math.Max(Limits.UapiWriteBufferBytes, Limits.UapiReadBufferBytes));
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // Streams the request. False when the daemon closed the connection under us (it refused something and said
    // why in an errno line, which the caller then reads).
    static async Task<bool> SendSetAsync(NetworkStream stream, UapiSetEncoder encoder, DeviceUpdate update,
        CancellationToken cancellationToken)
    {
        encoder.WriteDevice(update);
        foreach (var peer in update.Peers)
        {
            ArgumentNullException.ThrowIfNull(peer, nameof(update.Peers));
            peer.Validate();
            int next = -1;
            while (!encoder.TryWritePeer(peer, ref next))
                if (!await DrainAsync(stream, encoder, cancellationToken).ConfigureAwait(false))
                    return false;
        }
        if (!encoder.TryWriteEnd())
        {
            if (!await DrainAsync(stream, encoder, cancellationToken).ConfigureAwait(false))
                return false;
            encoder.TryWriteEnd();
        }
        return await DrainAsync(stream, encoder, cancellationToken).ConfigureAwait(false);
    }

    static async Task<bool> DrainAsync(NetworkStream stream, UapiSetEncoder encoder, CancellationToken cancellationToken)
    {
        try
        {
            await stream.WriteAsync(encoder.Pending, cancellationToken).ConfigureAwait(false);
            encoder.Clear();
            return true;
        }
        catch (IOException e) when (e.InnerException is SocketException
                                    {
                                        SocketErrorCode: SocketError.Shutdown or SocketError.ConnectionReset
                                        or SocketError.ConnectionAborted
                                    })
        {
            encoder.Clear();
            return false;
        }
    }

    // A set reply is exactly "errno=N\n\n". Null when the connection ended without one.
    async Task<int?> ReadSetReplyAsync(NetworkStream stream, byte[] buffer, bool requestComplete,
        CancellationToken cancellationToken)
    {
        var reader = new UapiLineReader(stream, buffer);
        int? errno = null;
        try
        {
            while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false))
            {
                var line = reader.Line;
                if (line.IsEmpty)
                    return errno ?? WireGuardProtocolErrorMissingErrno();
                if (errno is not null || !line.StartsWith("errno="u8) ||
                    !int.TryParse(Encoding.ASCII.GetString(line["errno="u8.Length..]), NumberStyles.AllowLeadingSign,
                        CultureInfo.InvariantCulture, out int value))
                    return WireGuardProtocolErrorMissingErrno();
                errno = value;
            }
        }
        catch (IOException) when (!requestComplete)
        {
            // Reset while we were still writing: report what was read, if anything.
        }
        if (errno is not null)
            return errno;
        if (requestComplete)
            WireGuardProtocolException.Throw(ProtocolError.Truncated, $"uapi set {InterfaceName}");
        return null;
    }

    static int WireGuardProtocolErrorMissingErrno()
    {
        WireGuardProtocolException.Throw(ProtocolError.MissingErrno);
        return 0;
    }

    /// <inheritdoc />
    public async Task<DeviceState> GetAsync(CancellationToken cancellationToken = default)
    {
        using var socket = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync("get=1\n\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(Limits.UapiReadBufferBytes);
        using var parser = new UapiGetParser();
        try
        {
            var reader = new UapiLineReader(stream, buffer);
            while (true)
            {
                if (!await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false))
                    WireGuardProtocolException.Throw(ProtocolError.Truncated, $"uapi get {InterfaceName}");
                if (!parser.Accept(reader.Line))
                    break;
            }
        }
        finally
        {
            Array.Clear(buffer);
            ArrayPool<byte>.Shared.Return(buffer);
        }
        switch (parser.Errno)
        {
            case null:
                WireGuardProtocolException.Throw(ProtocolError.MissingErrno, $"uapi get {InterfaceName}");
                break;
            case not 0:
                throw new WireGuardDeviceException($"uapi get {InterfaceName}", Math.Abs(parser.Errno.Value));
        }
        return parser.ToDeviceState(InterfaceName);
    }

    async Task<Socket> ConnectAsync(CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AccessDenied)
        {
            socket.Dispose();
            throw new WireGuardSystemException($"connect(AF_UNIX, {SocketPath})", (int)Errno.EACCES);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new WireGuardUnavailableException(UnavailableReason.NoDaemon, InterfaceName, e);
        }
    }
}

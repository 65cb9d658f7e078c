using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace Tabula.Provisioning.Transport;

/// <summary>
/// One accepted TCP connection with TLS terminated by OpenSSL on the socket itself. Kestrel sees plaintext
/// pipes: what it writes is encrypted by <c>SSL_write</c> straight from pipe memory into the socket, and
/// <c>SSL_read</c> decrypts straight into pipe memory. That is the nginx path: one read of the file, one encryption,
/// one send; SslStream on Linux adds a memory BIO on each side and Kestrel a copy into its socket pipe.
/// </summary>
/// <remarks>
/// OpenSSL's SSL object is not safe for concurrent calls, so every call runs under <see cref="_sslGate"/>; the calls
/// never block (the socket is non-blocking) and the lock is never held across an await. The receiving loop does the
/// handshake, then decrypts into Kestrel's input; the sending loop encrypts Kestrel's output.
/// </remarks>
internal sealed class TlsSocketConnection : ConnectionContext,
    ITlsConnectionFeature, ITlsApplicationProtocolFeature, IMemoryPoolFeature
{
    const int ReceiveBytes = 8 * 1024;
    static long s_lastId;

    readonly Socket _socket;
    readonly SocketReadiness _readiness;
    readonly Lock _sslGate = new();
    readonly SafeSslHandle _ssl;
    readonly Pipe _input;    // decrypted request bytes: we write, Kestrel reads
    readonly Pipe _output;   // response bytes: Kestrel writes, we encrypt
    readonly TaskCompletionSource<bool> _handshake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    readonly CancellationTokenSource _closed = new();
    readonly CancellationTokenSource _handshakeTimeout;
    readonly Task _running;
    volatile bool _closing;
    byte[] _applicationProtocol = [];

    TlsSocketConnection(Socket socket, SafeSslHandle ssl, SocketReadiness readiness, TlsTransportOptions options)
    {
        _socket = socket;
        _ssl = ssl;
        _readiness = readiness;
        ConnectionId = "tls-" + Interlocked.Increment(ref s_lastId).ToString("x");
        LocalEndPoint = socket.LocalEndPoint;
        RemoteEndPoint = socket.RemoteEndPoint;
        ConnectionClosed = _closed.Token;
        var pool = MemoryPool<byte>.Shared;
        _input = new Pipe(new PipeOptions(pool, minimumSegmentSize: ReceiveBytes, useSynchronizationContext: false));
        // The sending loop resumes inline, on the thread of Kestrel's flush: the chunk just read from the file is
        // encrypted and sent by the same thread, with no thread-pool hop per chunk (as nginx's worker does). The loop
        // never calls back into Kestrel; Kestrel's side resumes on the thread pool as usual.
        _output = new Pipe(new PipeOptions(options.ResponseBlocks, readerScheduler: PipeScheduler.Inline,
            minimumSegmentSize: BlockPool.BlockBytes, useSynchronizationContext: false,
            pauseWriterThreshold: options.MaxResponseBufferBytes, resumeWriterThreshold: options.MaxResponseBufferBytes / 2));
        Transport = new DuplexPipe(_input.Reader, _output.Writer);
        Features.Set<ITlsConnectionFeature>(this);
        Features.Set<ITlsApplicationProtocolFeature>(this);
        Features.Set<IMemoryPoolFeature>(this);
        Features.Set(this);
        _handshakeTimeout = new CancellationTokenSource(options.HandshakeTimeout);
        _handshakeTimeout.Token.Register(static state => ((TlsSocketConnection)state!).Close(), this);
        _running = RunAsync();
    }

    /// <summary>Takes over an accepted socket and starts the handshake in the background.</summary>
    public static TlsSocketConnection Start(Socket socket, TlsContext context, ReadinessReactor reactor,
        TlsTransportOptions options)
    {
        socket.Blocking = false;
        socket.NoDelay = true;
        // OpenSSL writes with write(2), not send(MSG_NOSIGNAL): a peer that reset would raise SIGPIPE, which the .NET
        // runtime ignores (SigIgn bit 13 on the running server), so it is an error return instead
        // (TlsTransportTests.Client_that_resets_mid_download_leaves_the_server_serving).
        int fd = (int)socket.SafeHandle.DangerousGetHandle();
        LibSsl.ERR_clear_error();
        SafeSslHandle ssl = LibSsl.SSL_new(context.Handle);
        if (ssl.IsInvalid)
        {
            ssl.Dispose();
            throw new TlsTransportException("SSL_new failed: " + LibSsl.DrainErrors());
        }
        SocketReadiness readiness;
        try
        {
            if (LibSsl.SSL_set_fd(ssl, fd) != 1)
                throw new TlsTransportException("SSL_set_fd failed: " + LibSsl.DrainErrors());
            LibSsl.SSL_set_accept_state(ssl);
            readiness = reactor.Register(socket.SafeHandle);
        }
        catch
        {
            ssl.Dispose();
            throw;
        }
        return new TlsSocketConnection(socket, ssl, readiness, options);
    }

    public override string ConnectionId { get; set; }
    public override IFeatureCollection Features { get; } = new FeatureCollection();
    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();
    public override IDuplexPipe Transport { get; set; }

    // ITlsConnectionFeature: no client certificates on this server.
    public X509Certificate2? ClientCertificate { get => null; set => throw new NotSupportedException(); }
    public Task<X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) =>
        Task.FromResult<X509Certificate2?>(null);

    public ReadOnlyMemory<byte> ApplicationProtocol => _applicationProtocol;

    /// <summary>True once the TLS handshake is done, false if it failed or timed out.</summary>
    public Task<bool> Handshake => _handshake.Task;
    public MemoryPool<byte> MemoryPool => MemoryPool<byte>.Shared;

    async Task RunAsync()
    {
        await Task.Yield();   // the accept loop goes on at once
        var receiving = ReceiveAsync();
        var sending = SendAsync();
        await Task.WhenAll(receiving, sending);
        _handshakeTimeout.Dispose();
        // Off this thread: Kestrel's callbacks on ConnectionClosed must not run inside the transport's loop.
        ThreadPool.UnsafeQueueUserWorkItem(static cts =>
        {
            try
            {
                cts.Cancel();
            }
            catch (AggregateException)
            {
                // A callback's failure is the callback owner's; the connection is closed either way.
            }
        }, _closed, preferLocal: false);
    }

    async Task ReceiveAsync()
    {
        var writer = _input.Writer;
        Exception? failure = null;
        try
        {
            if (!await HandshakeAsync())
            {
                failure = new ConnectionAbortedException("TLS handshake failed");
                return;
            }
            while (true)
            {
                var memory = writer.GetMemory(ReceiveBytes);
                int read = await ReadAsync(memory);
                if (read <= 0)
                    break;   // the peer closed, or the connection is closing
                writer.Advance(read);
                var flushed = await writer.FlushAsync();
                if (flushed.IsCompleted || flushed.IsCanceled)
                    break;
            }
        }
        catch (Exception e)
        {
            failure = e;
        }
        finally
        {
            _handshake.TrySetResult(false);
            await writer.CompleteAsync(failure);
            // Kestrel may wait for more output to send; without input nothing more will come after the peer left.
            if (failure is not null)
                Close();
        }
    }

    async Task SendAsync()
    {
        var reader = _output.Reader;
        Exception? failure = null;
        try
        {
            if (!await _handshake.Task)
                return;
            while (true)
            {
                var result = await reader.ReadAsync();
                if (result.IsCanceled)
                    break;
                foreach (var segment in result.Buffer)
                    await WriteAsync(segment);
                reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    // close_notify, best effort: the socket is shut down right after.
                    Call(SslCall.Shutdown, default, out _);
                    break;
                }
            }
        }
        catch (Exception e)
        {
            failure = e;
        }
        finally
        {
            await reader.CompleteAsync(failure);
            Close();
        }
    }

    async Task<bool> HandshakeAsync()
    {
        while (!_closing)
        {
            long readEpoch = _readiness.Readable.Epoch, writeEpoch = _readiness.Writable.Epoch;
            if (Call(SslCall.Handshake, default, out int error) > 0)
            {
                _applicationProtocol = SelectedProtocol();
                _handshakeTimeout.CancelAfter(Timeout.InfiniteTimeSpan);
                _handshake.TrySetResult(true);
                return true;
            }
            if (!await WaitAsync(error, readEpoch, writeEpoch))
                return false;
        }
        return false;
    }

    /// <summary>Decrypts into <paramref name="memory"/>; 0 when the peer or this side closed.</summary>
    async ValueTask<int> ReadAsync(Memory<byte> memory)
    {
        while (!_closing)
        {
            long readEpoch = _readiness.Readable.Epoch, writeEpoch = _readiness.Writable.Epoch;
            int read = Call(SslCall.Read, memory, out int error);
            if (read > 0)
                return read;
            if (error == LibSsl.SslErrorZeroReturn)
                return 0;
            if (!await WaitAsync(error, readEpoch, writeEpoch))
                return 0;
        }
        return 0;
    }

    async ValueTask WriteAsync(ReadOnlyMemory<byte> memory)
    {
        while (!memory.IsEmpty)
        {
            if (_closing)
                throw new ConnectionAbortedException("the connection is closing");
            long readEpoch = _readiness.Readable.Epoch, writeEpoch = _readiness.Writable.Epoch;
            int written = Call(SslCall.Write, MemoryMarshal.AsMemory(memory), out int error);
            if (written > 0)
            {
                memory = memory[written..];
                continue;
            }
            if (!await WaitAsync(error, readEpoch, writeEpoch))
                throw new ConnectionResetException("the peer closed the connection while a response was sent");
        }
    }

    /// <summary>Waits for what OpenSSL asked for; false when the call failed for good.</summary>
    async ValueTask<bool> WaitAsync(int error, long readEpoch, long writeEpoch)
    {
        if (error == LibSsl.SslErrorWantRead)
            await _readiness.Readable.WaitAsync(readEpoch);
        else if (error == LibSsl.SslErrorWantWrite)
            await _readiness.Writable.WaitAsync(writeEpoch);
        else
            return false;   // SSL_ERROR_SSL, SYSCALL (reset, EOF without close_notify), ZERO_RETURN
        return !_closing;
    }

    enum SslCall { Handshake, Read, Write, Shutdown }

    unsafe int Call(SslCall call, Memory<byte> memory, out int error)
    {
        lock (_sslGate)
        {
            if (_ssl.IsClosed)
            {
                error = LibSsl.SslErrorSsl;
                return -1;
            }
            LibSsl.ERR_clear_error();
            int result;
            fixed (byte* buffer = memory.Span)
            {
                result = call switch
                {
                    SslCall.Handshake => LibSsl.SSL_do_handshake(_ssl),
                    SslCall.Read => LibSsl.SSL_read(_ssl, buffer, memory.Length),
                    SslCall.Write => LibSsl.SSL_write(_ssl, buffer, memory.Length),
                    _ => LibSsl.SSL_shutdown(_ssl),
                };
            }
            error = result > 0 ? LibSsl.SslErrorNone : LibSsl.SSL_get_error(_ssl, result);
            if (error is LibSsl.SslErrorSsl or LibSsl.SslErrorSyscall)
                LibSsl.ERR_clear_error();   // not logged: a bad client is not the server's problem
            return result;
        }
    }

    unsafe byte[] SelectedProtocol()
    {
        lock (_sslGate)
        {
            byte* data;
            uint length;
            LibSsl.SSL_get0_alpn_selected(_ssl, &data, &length);
            return length == 0 ? [] : new ReadOnlySpan<byte>(data, (int)length).ToArray();
        }
    }

    /// <summary>Shuts the socket both ways and wakes both loops; they end and <see cref="RunAsync"/> cleans up.</summary>
    void Close()
    {
        if (_closing)
            return;
        _closing = true;
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        _output.Reader.CancelPendingRead();
        _readiness.Readable.Set();
        _readiness.Writable.Set();
    }

    public override void Abort(ConnectionAbortedException abortReason) => Close();

    /// <summary>Kestrel is done: what it wrote is still sent (the sending loop drains the pipe, then closes),
    /// unless it aborted the connection first.</summary>
    public override async ValueTask DisposeAsync()
    {
        await Transport.Input.CompleteAsync();
        await Transport.Output.CompleteAsync();
        await _running;
        _readiness.Dispose();
        lock (_sslGate)
            _ssl.Dispose();
        _socket.Dispose();
    }

    sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input => input;
        public PipeWriter Output => output;
    }
}

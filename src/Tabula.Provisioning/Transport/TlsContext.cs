using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Tabula.Provisioning.Transport;

/// <summary>
/// One OpenSSL server context: certificate chain and key from PEM files, TLS 1.2 minimum, no renegotiation, and
/// ALPN choosing h2 or http/1.1 as the listener allows. Every connection's SSL object is made from it.
/// </summary>
internal sealed unsafe class TlsContext : IDisposable
{
    readonly SafeSslContextHandle _ctx;
    int _disposed;
    // ALPN wire list for the callback: [uint length][protocols…], in native memory that lives as long as the context
    // (SSL_select_next_proto hands OpenSSL a pointer into it).
    readonly byte* _alpn;

    TlsContext(SafeSslContextHandle ctx, byte* alpn)
    {
        _ctx = ctx;
        _alpn = alpn;
    }

    public SafeSslContextHandle Handle => !_ctx.IsClosed ? _ctx : throw new ObjectDisposedException(nameof(TlsContext));

    /// <summary>Loads the chain and key; a bad file or a key that does not match the certificate is a
    /// <see cref="TlsTransportException"/> naming OpenSSL's reason.</summary>
    public static TlsContext Create(string certificateChainPath, string keyPath, HttpProtocols protocols)
    {
        LibSsl.ERR_clear_error();
        SafeSslContextHandle ctx = LibSsl.SSL_CTX_new(LibSsl.TLS_server_method());
        if (ctx.IsInvalid)
        {
            ctx.Dispose();
            throw new TlsTransportException("OpenSSL could not make a server context: " + LibSsl.DrainErrors());
        }
        byte* alpn = null;
        try
        {
            if (LibSsl.SSL_CTX_use_certificate_chain_file(ctx, certificateChainPath) != 1)
                throw new TlsTransportException($"cannot load the certificate chain {certificateChainPath}: {LibSsl.DrainErrors()}");
            if (LibSsl.SSL_CTX_use_PrivateKey_file(ctx, keyPath, LibSsl.SslFiletypePem) != 1)
            {
                string why = LibSsl.DrainErrors();
                throw new TlsTransportException(why.Contains("key values mismatch", StringComparison.Ordinal)
                    ? $"the private key {keyPath} does not match the certificate {certificateChainPath}"
                    : $"cannot load the private key {keyPath}: {why}");
            }
            if (LibSsl.SSL_CTX_check_private_key(ctx) != 1)
                throw new TlsTransportException($"the private key {keyPath} does not match the certificate: {LibSsl.DrainErrors()}");
            if (LibSsl.SSL_CTX_ctrl(ctx, LibSsl.SslCtrlSetMinProtoVersion, LibSsl.Tls12Version, 0) != 1)
                throw new TlsTransportException("OpenSSL refused TLS 1.2 as the minimum version: " + LibSsl.DrainErrors());
            // One SSL_write per 64 KiB chunk (four records) rather than one per record. When the socket fills up
            // mid-chunk, the call is repeated with the same bytes, which may sit at another address by then (pipe
            // memory is pinned only for the duration of a call): hence the moving write buffer.
            LibSsl.SSL_CTX_ctrl(ctx, LibSsl.SslCtrlMode, (nint)LibSsl.SslModeAcceptMovingWriteBuffer, 0);
            LibSsl.SSL_CTX_set_options(ctx, LibSsl.SslOpNoRenegotiation);

            byte[] wire = AlpnWire(protocols);
            alpn = (byte*)NativeMemory.Alloc((nuint)(sizeof(uint) + wire.Length));
            *(uint*)alpn = (uint)wire.Length;
            wire.CopyTo(new Span<byte>(alpn + sizeof(uint), wire.Length));
            LibSsl.SSL_CTX_set_alpn_select_cb(ctx, &SelectApplicationProtocol, (nint)alpn);
            return new TlsContext(ctx, alpn);
        }
        catch
        {
            ctx.Dispose();
            if (alpn != null)
                NativeMemory.Free(alpn);
            throw;
        }
    }

    /// <summary>The server's ALPN list, most preferred first (RFC 7301 wire format).</summary>
    static byte[] AlpnWire(HttpProtocols protocols)
    {
        var wire = new List<byte>();
        if (protocols.HasFlag(HttpProtocols.Http2))
            wire.AddRange("\u0002h2"u8);
        if (protocols.HasFlag(HttpProtocols.Http1))
            wire.AddRange("\u0008http/1.1"u8);
        return [.. wire];
    }

    [UnmanagedCallersOnly]
    static int SelectApplicationProtocol(nint ssl, byte** output, byte* outputLength, byte* client, uint clientLength,
        nint arg)
    {
        byte* server = (byte*)arg + sizeof(uint);
        uint serverLength = *(uint*)arg;
        byte* selected;
        byte selectedLength;
        if (LibSsl.SSL_select_next_proto(&selected, &selectedLength, server, serverLength, client, clientLength)
            != LibSsl.OpenSslNpnNegotiated)
            return LibSsl.SslTlsextErrNoAck;   // no common protocol: carry on without ALPN (HTTP/1.1)
        *output = selected;
        *outputLength = selectedLength;
        return LibSsl.SslTlsextErrOk;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _ctx.Dispose();
        NativeMemory.Free(_alpn);
    }
}

/// <summary>The TLS transport could not be set up (certificate, key, OpenSSL).</summary>
public sealed class TlsTransportException(string message) : Exception(message);

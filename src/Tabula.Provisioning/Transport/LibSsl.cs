using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Tabula.Provisioning.Transport;

/// <summary>
/// The few OpenSSL 3 calls the TLS transport makes, bound with <c>LibraryImport</c> to the system's libssl.so.3
/// and libcrypto.so.3: the same libraries .NET's own SslStream uses on Linux, so nothing new is deployed.
/// </summary>
/// <remarks>Macros in ssl.h (SSL_CTX_set_mode, SSL_CTX_set_min_proto_version) are SSL_CTX_ctrl calls.</remarks>
internal static unsafe partial class LibSsl
{
    const string Ssl = "libssl.so.3";
    const string Crypto = "libcrypto.so.3";

    public const int SslFiletypePem = 1;
    public const int SslCtrlMode = 33;
    public const int SslCtrlSetMinProtoVersion = 123;
    public const int Tls12Version = 0x0303;
    public const long SslModeAcceptMovingWriteBuffer = 0x2;
    public const ulong SslOpNoRenegotiation = 1UL << 30;
    public const int SslTlsextErrOk = 0;
    public const int SslTlsextErrNoAck = 3;
    public const int OpenSslNpnNegotiated = 1;

    // SSL_get_error results.
    public const int SslErrorNone = 0;
    public const int SslErrorSsl = 1;
    public const int SslErrorWantRead = 2;
    public const int SslErrorWantWrite = 3;
    public const int SslErrorSyscall = 5;
    public const int SslErrorZeroReturn = 6;

    [LibraryImport(Ssl)]
    public static partial nint TLS_server_method();

    [LibraryImport(Ssl)]
    public static partial SafeSslContextHandle SSL_CTX_new(nint method);

    /// <summary>Only for <see cref="SafeSslContextHandle"/>'s release.</summary>
    [LibraryImport(Ssl)]
    public static partial void SSL_CTX_free(nint ctx);

    [LibraryImport(Ssl)]
    public static partial nint SSL_CTX_ctrl(SafeSslContextHandle ctx, int command, nint larg, nint parg);

    [LibraryImport(Ssl)]
    public static partial ulong SSL_CTX_set_options(SafeSslContextHandle ctx, ulong options);

    [LibraryImport(Ssl, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int SSL_CTX_use_certificate_chain_file(SafeSslContextHandle ctx, string file);

    [LibraryImport(Ssl, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int SSL_CTX_use_PrivateKey_file(SafeSslContextHandle ctx, string file, int type);

    [LibraryImport(Ssl)]
    public static partial int SSL_CTX_check_private_key(SafeSslContextHandle ctx);

    [LibraryImport(Ssl)]
    public static partial void SSL_CTX_set_alpn_select_cb(SafeSslContextHandle ctx,
        delegate* unmanaged<nint, byte**, byte*, byte*, uint, nint, int> callback, nint arg);

    [LibraryImport(Ssl)]
    public static partial int SSL_select_next_proto(byte** output, byte* outputLength, byte* server, uint serverLength,
        byte* client, uint clientLength);

    [LibraryImport(Ssl)]
    public static partial SafeSslHandle SSL_new(SafeSslContextHandle ctx);

    /// <summary>Only for <see cref="SafeSslHandle"/>'s release.</summary>
    [LibraryImport(Ssl)]
    public static partial void SSL_free(nint ssl);

    [LibraryImport(Ssl)]
    public static partial int SSL_set_fd(SafeSslHandle ssl, int fd);

    [LibraryImport(Ssl)]
    public static partial void SSL_set_accept_state(SafeSslHandle ssl);

    [LibraryImport(Ssl)]
    public static partial int SSL_do_handshake(SafeSslHandle ssl);

    [LibraryImport(Ssl)]
    public static partial int SSL_read(SafeSslHandle ssl, byte* buffer, int count);

    [LibraryImport(Ssl)]
    public static partial int SSL_write(SafeSslHandle ssl, byte* buffer, int count);

    [LibraryImport(Ssl)]
    public static partial int SSL_get_error(SafeSslHandle ssl, int result);

    [LibraryImport(Ssl)]
    public static partial int SSL_shutdown(SafeSslHandle ssl);

    [LibraryImport(Ssl)]
    public static partial void SSL_get0_alpn_selected(SafeSslHandle ssl, byte** data, uint* length);

    [LibraryImport(Crypto)]
    public static partial nuint ERR_get_error();

    [LibraryImport(Crypto)]
    public static partial void ERR_clear_error();

    [LibraryImport(Crypto)]
    public static partial void ERR_error_string_n(nuint error, byte* buffer, nuint length);

    /// <summary>Drains this thread's OpenSSL error queue into one message (the queue is per thread: call right
    /// after the failing call, on the same thread).</summary>
    public static string DrainErrors()
    {
        var parts = new List<string>();
        byte* buffer = stackalloc byte[256];
        for (int i = 0; i < 8; i++)
        {
            nuint error = ERR_get_error();
            if (error == 0)
                break;
            ERR_error_string_n(error, buffer, 256);
            parts.Add(Marshal.PtrToStringUTF8((nint)buffer) ?? "?");
        }
        ERR_clear_error();
        return parts.Count == 0 ? "no OpenSSL error recorded" : string.Join("; ", parts);
    }
}

/// <summary>An OpenSSL SSL_CTX reference, released with SSL_CTX_free (OpenSSL counts references: SSL objects made from it keep their own).</summary>
internal sealed class SafeSslContextHandle() : SafeHandleZeroOrMinusOneIsInvalid(ownsHandle: true)
{
    protected override bool ReleaseHandle()
    {
        LibSsl.SSL_CTX_free(handle);
        return true;
    }
}

/// <summary>An OpenSSL SSL (one connection), released with SSL_free; a call in flight keeps it alive (SafeHandle reference counting).</summary>
internal sealed class SafeSslHandle() : SafeHandleZeroOrMinusOneIsInvalid(ownsHandle: true)
{
    protected override bool ReleaseHandle()
    {
        LibSsl.SSL_free(handle);
        return true;
    }
}

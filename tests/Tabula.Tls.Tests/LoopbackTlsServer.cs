using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Tabula.Tls.Tests;

/// <summary>
/// An HTTPS server on 127.0.0.1 with a certificate from <see cref="DevCertificateAuthority"/>: accepts connections
/// until disposed, answers every request with 200 "ok" and closes. Handshakes the client refuses end the connection.
/// </summary>
sealed class LoopbackTlsServer : IAsyncDisposable
{
    readonly TcpListener listener = new(IPAddress.Loopback, 0);
    readonly X509Certificate2 certificate;
    readonly CancellationTokenSource stop = new(TimeSpan.FromSeconds(60));
    readonly Task loop;

    public LoopbackTlsServer(DevTlsFiles files)
    {
        using var pem = X509Certificate2.CreateFromPemFile(files.ServerCertificate, files.ServerKey);
        // An exportable copy: OpenSSL serves an ephemeral PEM key fine, a PKCS#12 round trip keeps it platform-neutral.
        certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        listener.Start();
        loop = AcceptAsync();
    }

    public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

    async Task AcceptAsync()
    {
        for (int served = 0; served < 100 && !stop.IsCancellationRequested; served++)
        {
            TcpClient client;
            try { client = await listener.AcceptTcpClientAsync(stop.Token); }
            catch (OperationCanceledException) { return; }
            catch (SocketException) { return; }
            _ = ServeAsync(client);
        }
    }

    async Task ServeAsync(TcpClient client)
    {
        using (client)
        await using (var tls = new SslStream(client.GetStream()))
        {
            try
            {
                await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate }, stop.Token);
                var buffer = new byte[4096];
                var request = new StringBuilder();
                while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal) && request.Length < 16384)
                {
                    int read = await tls.ReadAsync(buffer, stop.Token);
                    if (read == 0) return;
                    request.Append(Encoding.ASCII.GetString(buffer, 0, read));
                }
                await tls.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"u8.ToArray(), stop.Token);
            }
            catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or OperationCanceledException)
            {
                // The client refused the certificate: what the refusal tests expect.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        stop.Cancel();
        listener.Stop();
        await loop;
        certificate.Dispose();
        stop.Dispose();
    }
}

using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Tabula.Provisioning.Core;
using Tabula.Provisioning.Hosting;
using Tabula.Provisioning.Tests.Support;
using Tabula.Tls;

namespace Tabula.Provisioning.Tests;

/// <summary>
/// The TLS transport (OpenSSL on the socket under Kestrel): many connections at once, clients that misbehave at
/// the TLS layer, and a key that does not belong to the certificate.
/// </summary>
public sealed class TlsTransportTests
{
    const int ArchiveSize = 2_000_011;

    [Fact]
    public async Task Parallel_downloads_over_http1_and_http2_arrive_intact()
    {
        await using var server = await TestServer.StartAsync();
        var package = server.Packages.Create(trustedSigners: 2, size: ArchiveSize);
        (await server.PublishAsync(package)).Dispose();
        string url = $"/ospkg/{package.ArchiveSha256}.zip";

        async Task<byte[]> Download(int httpMajor)
        {
            using var client = server.Client();
            using var request = new HttpRequestMessage(HttpMethod.Get, url)
            {
                Version = new Version(httpMajor, httpMajor == 1 ? 1 : 0),
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            using var response = await client.SendAsync(request);
            response.EnsureSuccessStatusCode();
            Assert.Equal(httpMajor, response.Version.Major);
            return await response.Content.ReadAsByteArrayAsync();
        }

        var downloads = Enumerable.Range(0, 24).Select(i => Download(i % 2 == 0 ? 1 : 2)).ToArray();
        foreach (var bytes in await Task.WhenAll(downloads))
            Assert.Equal(package.Archive, bytes);
    }

    [Fact]
    public async Task Client_that_resets_mid_download_leaves_the_server_serving()
    {
        await using var server = await TestServer.StartAsync();
        var package = server.Packages.Create(trustedSigners: 2, size: 8 * ArchiveSize);
        (await server.PublishAsync(package)).Dispose();

        for (int i = 0; i < 3; i++)
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(IPAddress.Loopback, server.BaseAddress.Port);
            var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: true, (_, _, _, _) => true);
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" });
            await tls.WriteAsync(Encoding.ASCII.GetBytes(
                $"GET /ospkg/{package.ArchiveSha256}.zip HTTP/1.1\r\nHost: localhost\r\n\r\n"));
            var buffer = new byte[64 * 1024];
            long got = 0;
            while (got < 200_000)
                got += await tls.ReadAsync(buffer);
            // RST instead of FIN: the server's next write fails with ECONNRESET or EPIPE (not a SIGPIPE death).
            tcp.Client.LingerState = new LingerOption(true, 0);
            tcp.Client.Close();
        }

        using var client = server.Client();
        Assert.Equal(package.Archive, await client.GetByteArrayAsync($"/ospkg/{package.ArchiveSha256}.zip"));
    }

    [Fact]
    public async Task Plaintext_http_on_the_tls_port_is_dropped_and_the_server_keeps_serving()
    {
        await using var server = await TestServer.StartAsync();
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(IPAddress.Loopback, server.BaseAddress.Port);
            var stream = tcp.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"));
            var buffer = new byte[4096];
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            int total = 0, n;
            while ((n = await stream.ReadAsync(buffer, timeout.Token)) > 0)
                total += n;
            // At most a TLS alert comes back (7 bytes), never an HTTP answer.
            Assert.True(total <= 7, $"the server answered {total} bytes to plaintext HTTP");
        }

        using var client = server.Client();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
    }

    [Fact]
    public async Task Client_that_never_finishes_the_handshake_is_cut_after_the_header_timeout()
    {
        await using var server = await TestServer.StartAsync(o => o.Limits.RequestHeadersTimeoutSeconds = 2);
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, server.BaseAddress.Port);
        var started = DateTime.UtcNow;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        int n = await tcp.GetStream().ReadAsync(new byte[16], timeout.Token);
        var waited = DateTime.UtcNow - started;
        Assert.Equal(0, n);
        Assert.InRange(waited.TotalSeconds, 1.5, 20);
    }

    [Fact]
    public void Key_that_does_not_belong_to_the_certificate_is_a_config_error_naming_it()
    {
        string root = Directory.CreateTempSubdirectory("tabula-tls-").FullName;
        try
        {
            var one = DevCertificateAuthority.Init(Path.Combine(root, "one"), ["localhost"], DateTimeOffset.UtcNow,
                TimeSpan.FromDays(30), TimeSpan.FromDays(30));
            var two = DevCertificateAuthority.Init(Path.Combine(root, "two"), ["localhost"], DateTimeOffset.UtcNow,
                TimeSpan.FromDays(30), TimeSpan.FromDays(30));
            new SignedPackages().WriteTrustPolicy(Path.Combine(root, "trust"));
            var options = new ProvisioningOptions
            {
                Listen = "https://127.0.0.1:0",
                StoreDirectory = Path.Combine(root, "store"),
                TrustPolicyDirectory = Path.Combine(root, "trust"),
                Tls = new TlsOptions { CertificatePath = one.ServerCertificate, KeyPath = two.ServerKey },
            };
            var error = Assert.Throws<ProvisioningConfigException>(() =>
                ProvisioningServer.Build(options,
                    TrustPolicyVerifier.FromDirectory(options.TrustPolicyDirectory)));
            Assert.Contains("does not match the certificate", error.Message);
            Assert.Contains(two.ServerKey, error.Message);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}

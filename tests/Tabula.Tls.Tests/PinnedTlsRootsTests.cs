using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Tabula.Packaging;

namespace Tabula.Tls.Tests;

/// <summary>
/// The one pinning policy through real TLS handshakes on loopback: the pinned handler must connect when the server's
/// chain ends at the pinned root, at the pinned time, for the host it names, and refuse (with the reason in
/// <see cref="PinnedTlsRoots.LastRefusal"/>) otherwise.
/// </summary>
public sealed class PinnedTlsRootsTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("tabula-tls-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    DevTlsFiles Ca(string name, DateTimeOffset now, TimeSpan validity) =>
        DevCertificateAuthority.Init(Path.Combine(dir, name), ["tabula-tls.test"], now, validity, validity);

    static async Task<string> GetAsync(PinnedTlsRoots pinned, string host, int port)
    {
        // Whatever the URL names, the connection goes to the loopback server: the name check is the TLS layer's.
        using var client = PinnedHttp.Client(new Uri($"https://{host}:{port}/"), pinned, TimeSpan.FromSeconds(20),
            configure: handler => handler.ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    await socket.ConnectAsync(System.Net.IPAddress.Loopback, port, ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            });
        return await client.GetStringAsync("/");
    }

    [Theory]
    [InlineData("tabula-tls.test")]
    [InlineData("localhost")]
    [InlineData("127.0.0.1")]
    public async Task Right_root_connects(string host)
    {
        var files = Ca("ca", DateTimeOffset.UtcNow, TimeSpan.FromDays(30));
        await using var server = new LoopbackTlsServer(files);
        var pinned = PinnedTlsRoots.LoadPemFile(files.CaCertificate, TimeProvider.System);

        Assert.Equal("ok", await GetAsync(pinned, host, server.Port));
        Assert.Null(pinned.LastRefusal);
    }

    [Fact]
    public async Task Wrong_root_is_refused()
    {
        var files = Ca("ca", DateTimeOffset.UtcNow, TimeSpan.FromDays(30));
        var other = Ca("other", DateTimeOffset.UtcNow, TimeSpan.FromDays(30));
        await using var server = new LoopbackTlsServer(files);
        var pinned = PinnedTlsRoots.LoadPemFile(other.CaCertificate, TimeProvider.System);

        await Assert.ThrowsAsync<HttpRequestException>(() => GetAsync(pinned, "tabula-tls.test", server.Port));
        Assert.StartsWith("server certificate does not chain to the pinned roots", pinned.LastRefusal);
    }

    [Fact]
    public async Task Both_roots_pinned_connects_and_no_roots_refuses()
    {
        var files = Ca("ca", DateTimeOffset.UtcNow, TimeSpan.FromDays(30));
        var other = Ca("other", DateTimeOffset.UtcNow, TimeSpan.FromDays(30));
        await using var server = new LoopbackTlsServer(files);
        var roots = Certificate.ParsePemBundle(File.ReadAllBytes(other.CaCertificate))
            .Concat(Certificate.ParsePemBundle(File.ReadAllBytes(files.CaCertificate))).ToList();

        Assert.Equal("ok", await GetAsync(new PinnedTlsRoots(roots, TimeProvider.System), "tabula-tls.test", server.Port));
        var none = new PinnedTlsRoots([], TimeProvider.System);
        await Assert.ThrowsAsync<HttpRequestException>(() => GetAsync(none, "tabula-tls.test", server.Port));
        Assert.StartsWith("server certificate does not chain to the pinned roots", none.LastRefusal);
    }

    [Fact]
    public async Task Expired_certificate_is_refused()
    {
        // CA and server certificate valid for a day, a year ago.
        var files = Ca("old", DateTimeOffset.UtcNow.AddDays(-365), TimeSpan.FromDays(1));
        await using var server = new LoopbackTlsServer(files);
        var pinned = PinnedTlsRoots.LoadPemFile(files.CaCertificate, TimeProvider.System);

        await Assert.ThrowsAsync<HttpRequestException>(() => GetAsync(pinned, "tabula-tls.test", server.Port));
        Assert.Contains("NotTimeValid", pinned.LastRefusal);
    }

    [Fact]
    public async Task Validity_is_judged_at_the_given_time()
    {
        var files = Ca("ca", DateTimeOffset.UtcNow, TimeSpan.FromDays(30));
        await using var server = new LoopbackTlsServer(files);
        var roots = Certificate.ParsePemBundle(File.ReadAllBytes(files.CaCertificate));

        var later = new PinnedTlsRoots(roots, new FixedTime(DateTimeOffset.UtcNow.AddDays(31)));
        await Assert.ThrowsAsync<HttpRequestException>(() => GetAsync(later, "tabula-tls.test", server.Port));
        Assert.Contains("NotTimeValid", later.LastRefusal);

        var earlier = new PinnedTlsRoots(roots, new FixedTime(DateTimeOffset.UtcNow.AddDays(-1)));
        await Assert.ThrowsAsync<HttpRequestException>(() => GetAsync(earlier, "tabula-tls.test", server.Port));
        Assert.Contains("NotTimeValid", earlier.LastRefusal);

        var within = new PinnedTlsRoots(roots, new FixedTime(DateTimeOffset.UtcNow.AddDays(29)));
        Assert.Equal("ok", await GetAsync(within, "tabula-tls.test", server.Port));
    }

    [Fact]
    public async Task Wrong_name_is_refused_even_with_the_right_root()
    {
        var files = Ca("ca", DateTimeOffset.UtcNow, TimeSpan.FromDays(30));
        await using var server = new LoopbackTlsServer(files);
        var pinned = PinnedTlsRoots.LoadPemFile(files.CaCertificate, TimeProvider.System);

        await Assert.ThrowsAsync<HttpRequestException>(() => GetAsync(pinned, "other.test", server.Port));
        Assert.Equal("server certificate does not name the host of the URL", pinned.LastRefusal);
    }

    [Fact]
    public void Errors_other_than_the_chain_are_fatal_whatever_the_chain()
    {
        var files = Ca("ca", DateTimeOffset.UtcNow, TimeSpan.FromDays(30));
        var pinned = PinnedTlsRoots.LoadPemFile(files.CaCertificate, TimeProvider.System);
        using var leaf = X509CertificateLoader.LoadCertificateFromFile(files.ServerCertificate);

        Assert.True(pinned.Validate(leaf, null, SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.False(pinned.Validate(leaf, null, SslPolicyErrors.RemoteCertificateNameMismatch));
        Assert.False(pinned.Validate(leaf, null, SslPolicyErrors.RemoteCertificateNotAvailable));
        Assert.False(pinned.Validate(null, null, SslPolicyErrors.None));
        Assert.Equal("server sent no certificate", pinned.LastRefusal);
        // The CA certificate is no server certificate of ours, but it chains to itself: the policy is the chain, the
        // name check is the TLS layer's (a CA certificate names no host, so a real handshake fails on the name).
        using var ca = X509CertificateLoader.LoadCertificateFromFile(files.CaCertificate);
        Assert.True(pinned.Validate(ca, null, SslPolicyErrors.None));
    }

    [Fact]
    public void Roots_file_errors_name_the_file()
    {
        string notPem = Path.Combine(dir, "not.pem");
        File.WriteAllText(notPem, "not a certificate");
        var error = Assert.Throws<PackageFormatException>(() => PinnedTlsRoots.LoadPemFile(notPem, TimeProvider.System));
        Assert.Equal(FormatError.InvalidPem, error.Error);
        Assert.Contains(notPem, error.Message);

        string large = Path.Combine(dir, "large.pem");
        File.WriteAllBytes(large, new byte[Limits.MaxPemBytes + 1]);
        Assert.Equal(FormatError.TooLarge, Assert.Throws<PackageFormatException>(() => PinnedTlsRoots.LoadPemFile(large, TimeProvider.System)).Error);
    }

    [Fact]
    public void Dev_ca_refuses_to_replace_its_key_unless_forced()
    {
        var first = Ca("ca", DateTimeOffset.UtcNow, TimeSpan.FromDays(30));
        string before = File.ReadAllText(first.CaCertificate);
        Assert.Throws<IOException>(() => Ca("ca", DateTimeOffset.UtcNow, TimeSpan.FromDays(30)));
        Assert.Equal(before, File.ReadAllText(first.CaCertificate));
        DevCertificateAuthority.Init(Path.Combine(dir, "ca"), [], DateTimeOffset.UtcNow, TimeSpan.FromDays(1), TimeSpan.FromDays(1), force: true);
        Assert.NotEqual(before, File.ReadAllText(first.CaCertificate));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(first.CaKey));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(first.ServerKey));
    }

    sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}

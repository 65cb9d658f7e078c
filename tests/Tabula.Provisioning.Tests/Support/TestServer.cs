using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Tabula.Provisioning.Core;
using Tabula.Provisioning.Hosting;
using Tabula.Provisioning.Storage;
using Tabula.Tls;

namespace Tabula.Provisioning.Tests.Support;

/// <summary>
/// A real provisioning server on loopback over HTTPS (Kestrel, a test CA made at start, a trust policy with real
/// roots), in this process. Clients pin the test CA exactly as machines would.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    readonly WebApplication app;

    TestServer(WebApplication app, string root, Uri baseAddress, string token, DevTlsFiles tls, SignedPackages packages)
    {
        this.app = app;
        Root = root;
        BaseAddress = baseAddress;
        Token = token;
        Tls = tls;
        Packages = packages;
    }

    public string Root { get; }
    public string StoreDirectory => Path.Combine(Root, "store");
    public Uri BaseAddress { get; }
    public string Token { get; }
    public DevTlsFiles Tls { get; }
    public SignedPackages Packages { get; }
    public FileStore Store => (FileStore)app.Services.GetService(typeof(IStore))!;

    public static async Task<TestServer> StartAsync(Action<ProvisioningOptions>? configure = null, SignedPackages? packages = null,
        TimeProvider? time = null)
    {
        string root = Directory.CreateTempSubdirectory("tabula-prov-").FullName;
        packages ??= new SignedPackages();
        packages.WriteTrustPolicy(Path.Combine(root, "trust"));
        var tls = DevCertificateAuthority.Init(Path.Combine(root, "tls"), ["localhost"], DateTimeOffset.UtcNow,
            TimeSpan.FromDays(30), TimeSpan.FromDays(30));
        var options = new ProvisioningOptions
        {
            Listen = "https://127.0.0.1:0",
            StoreDirectory = Path.Combine(root, "store"),
            TrustPolicyDirectory = Path.Combine(root, "trust"),
            Tls = new TlsOptions { CertificatePath = tls.ServerCertificate, KeyPath = tls.ServerKey },
        };
        configure?.Invoke(options);
        var store = new FileStore(options.StoreDirectory);
        var (token, record) = StaffTokens.Create("alice", DateTimeOffset.UtcNow);
        await store.AddTokenAsync(record, CancellationToken.None);
        var app = ProvisioningServer.Build(options, TrustPolicyVerifier.FromDirectory(options.TrustPolicyDirectory),
            time, minimumLevel: LogLevel.Warning);
        await app.StartAsync();
        var address = new Uri(ProvisioningServer.BoundAddresses(app)[0].Replace("127.0.0.1", "localhost"));
        return new TestServer(app, root, address, token, tls, packages);
    }

    /// <summary>An HTTPS client that trusts only the test CA; with <paramref name="token"/>, a staff client.</summary>
    public HttpClient Client(string? token = null) => PinnedClient(BaseAddress, Tls.CaCertificate, token);

    public static HttpClient PinnedClient(Uri baseAddress, string caFile, string? token = null)
    {
        return PinnedHttp.Client(baseAddress, PinnedTlsRoots.LoadPemFile(caFile, TimeProvider.System), TimeSpan.FromSeconds(100),
            token is null ? null : new AuthenticationHeaderValue("Bearer", token));
    }

    public static MultipartFormDataContent Upload(byte[] descriptor, HttpContent archive)
    {
        var content = new MultipartFormDataContent();
        content.Add(new ByteArrayContent(descriptor), "descriptor", "os.json");
        content.Add(archive, "archive", "os.zip");
        return content;
    }

    public async Task<HttpResponseMessage> PublishAsync(SignedPackage package, string? channel = "stable", string? token = null)
    {
        using var client = Client(token ?? Token);
        return await client.PostAsync(channel is null ? "/v1/packages" : $"/v1/packages?channel={channel}",
            Upload(package.Descriptor, new ByteArrayContent(package.Archive)));
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
        try
        {
            MakeWritable(Root);
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    static void MakeWritable(string root)
    {
        foreach (string f in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
            File.SetUnixFileMode(f, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }
}

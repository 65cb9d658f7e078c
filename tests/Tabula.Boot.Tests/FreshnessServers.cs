using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Tabula.Fleet;
using Tabula.Fleet.Api;
using Tabula.Fleet.Core;
using Tabula.Fleet.Security;
using Tabula.Fleet.Storage;
using Tabula.Packaging;
using Tabula.Tls;

namespace Tabula.Boot.Tests;

/// <summary>
/// The servers a booting machine talks to in <see cref="FreshnessTests"/>, both HTTPS on 127.0.0.1 with one test CA (the
/// machine's tls_roots.pem): the real fleet controller (<see cref="FleetServer"/> on SQLite in a temporary folder; its
/// ticket key is the machine's ticket_root.pem) and a mirror, a plain Kestrel app that serves packages by path and, playing
/// the seized provisioning server or an attacker holding the controller's TLS key, answers ticket requests however a test
/// tells it to (<see cref="Answers"/>). One pair per test class; tests keep apart by their own paths and machine classes.
/// </summary>
public sealed class FreshnessServers : IAsyncLifetime
{
    readonly string root = Directory.CreateTempSubdirectory("tabula-boot-fresh-").FullName;
    WebApplication? controller, mirror;

    public DevTlsFiles Tls { get; private set; } = null!;
    public IReadOnlyList<Certificate> Ca { get; private set; } = [];

    /// <summary>The controller's https://127.0.0.1:PORT/.</summary>
    public Uri Controller { get; private set; } = null!;

    /// <summary>The mirror's https://127.0.0.1:PORT/.</summary>
    public Uri Mirror { get; private set; } = null!;

    public string AdminToken { get; private set; } = "";

    /// <summary>The controller's ticket key, as a machine pins it (ticket_root.pem).</summary>
    public byte[] TicketPublicKey => controller!.Services.GetRequiredService<TicketKey>().PublicKey;

    public IStore Store => controller!.Services.GetRequiredService<IStore>();

    /// <summary>What the mirror serves to GET, by path.</summary>
    public ConcurrentDictionary<string, byte[]> Files { get; } = new(StringComparer.Ordinal);

    /// <summary>How the mirror answers a POST, by path.</summary>
    public ConcurrentDictionary<string, Func<HttpContext, Task>> Answers { get; } = new(StringComparer.Ordinal);

    /// <summary>Every request the mirror saw: "METHOD /path".</summary>
    public ConcurrentQueue<string> Requests { get; } = new();

    public async Task InitializeAsync()
    {
        Tls = DevCertificateAuthority.Init(Path.Combine(root, "tls"), ["127.0.0.1", "localhost"], DateTimeOffset.UtcNow,
            TimeSpan.FromDays(30), TimeSpan.FromDays(30));
        Ca = Certificate.ParsePemBundle(File.ReadAllBytes(Tls.CaCertificate));

        controller = await FleetServer.CreateAsync(new FleetOptions
        {
            Database = "sqlite:" + Path.Combine(root, "fleet.db"), Urls = "https://127.0.0.1:0",
            TlsCertificatePath = Tls.ServerCertificate, TlsKeyPath = Tls.ServerKey, LogLevel = LogLevel.Warning,
            RateLimits = new FleetRateLimits().Scaled(1000),   // every request of these tests comes from 127.0.0.1
        });
        await controller.StartAsync();
        Controller = controller.HttpsAddress() ?? throw new InvalidOperationException("the controller has no https address");
        var staff = controller.Services.GetRequiredService<StaffService>();
        var admin = await staff.CreateStaffAsync("test", "alice", "a long enough password", StaffRole.Admin, CancellationToken.None);
        AdminToken = await staff.CreateApiTokenAsync(admin, "tests", CancellationToken.None);

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var certificate = X509Certificate2.CreateFromPemFile(Tls.ServerCertificate, Tls.ServerKey);
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(certificate)));
        mirror = builder.Build();
        mirror.Run(ServeAsync);
        await mirror.StartAsync();
        Mirror = new Uri(mirror.Urls.First());
    }

    async Task ServeAsync(HttpContext context)
    {
        string path = context.Request.Path.Value ?? "";
        Requests.Enqueue($"{context.Request.Method} {path}");
        if (HttpMethods.IsPost(context.Request.Method) && Answers.TryGetValue(path, out var answer))
        {
            await answer(context);
            return;
        }
        if (HttpMethods.IsGet(context.Request.Method) && Files.TryGetValue(path, out var bytes))
        {
            context.Response.ContentLength = bytes.Length;
            await context.Response.Body.WriteAsync(bytes);
            return;
        }
        context.Response.StatusCode = StatusCodes.Status404NotFound;
    }

    /// <summary>A client of the controller that trusts only the test CA (staff's tools pin it the same way).</summary>
    public HttpClient Client(string? token = null) =>
        PinnedHttp.Client(Controller, new PinnedTlsRoots(Ca, TimeProvider.System), TimeSpan.FromSeconds(30),
            token is null ? null : new AuthenticationHeaderValue("Bearer", token));

    /// <summary>Staff make <paramref name="digest"/> the class's current release, then (optionally) set its floor.</summary>
    public async Task SetCurrentAsync(string machineClass, string digest, long release, long? floor = null, bool force = false)
    {
        using var staff = Client(AdminToken);
        using var current = await staff.PostAsJsonAsync($"/api/v1/releases/{machineClass}/current",
            new SetCurrentReleaseRequest(digest, release, "test"), FleetJson.Default.SetCurrentReleaseRequest);
        Assert.True(current.IsSuccessStatusCode, $"set-current: {(int)current.StatusCode} {await current.Content.ReadAsStringAsync()}");
        if (floor is { } f)
        {
            using var raised = await staff.PostAsJsonAsync($"/api/v1/releases/{machineClass}/floor",
                new ReleaseFloorRequest(f, force, "test"), FleetJson.Default.ReleaseFloorRequest);
            Assert.True(raised.IsSuccessStatusCode, $"floor: {(int)raised.StatusCode} {await raised.Content.ReadAsStringAsync()}");
        }
    }

    /// <summary>The controller's answer to a ticket request's bytes: (status, body).</summary>
    public async Task<(HttpStatusCode Status, byte[] Body)> AskControllerAsync(byte[] requestJson)
    {
        using var client = Client();
        using var content = new ByteArrayContent(requestJson) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } };
        using var response = await client.PostAsync(BootEndpoints.TicketPath, content);
        return (response.StatusCode, await response.Content.ReadAsByteArrayAsync());
    }

    /// <summary>How many tickets the controller recorded for <paramref name="machineId"/>.</summary>
    public Task<long> TicketsIssuedAsync(string machineId) => Store.ReadAsync(tx => tx.CountTicketsAsync(machineId), CancellationToken.None);

    public async Task DisposeAsync()
    {
        foreach (var app in new[] { mirror, controller })
        {
            if (app is null) continue;
            await app.StopAsync();
            await app.DisposeAsync();
        }
        Directory.Delete(root, recursive: true);
    }
}

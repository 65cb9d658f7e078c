using System.Net.Http.Headers;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Tabula.Fleet;
using Tabula.Fleet.Api;
using Tabula.Fleet.Core;
using Tabula.Packaging;
using Tabula.Tls;

namespace Tabula.Relay.Tests.Support;

/// <summary>
/// The real fleet controller over HTTPS on 127.0.0.1 (SQLite in a temporary folder, a dev CA from
/// <see cref="RelayFiles"/>), with an admin API token and an enrollment token; it can be stopped and started again
/// on the same port and database, as a controller restart.
/// </summary>
public sealed class FleetOverHttps : IAsyncDisposable
{
    readonly RelayFiles files;
    readonly string database;
    WebApplication? app;

    public Uri Address { get; private set; } = null!;
    public string AdminToken { get; private set; } = "";
    public string EnrollmentToken { get; private set; } = "";
    public IReadOnlyList<Certificate> Ca { get; }
    /// <summary>The SQLite file (tests that play a tampered database write to it directly).</summary>
    public string DatabaseFile => Path.Combine(files.Root, "fleet.db");

    FleetOverHttps(RelayFiles files, string? database)
    {
        this.files = files;
        this.database = database ?? "sqlite:" + Path.Combine(files.Root, "fleet.db");
        Ca = Certificate.ParsePemBundle(File.ReadAllBytes(files.Tls.CaCertificate));
    }

    /// <summary>The relays' upstream resolvers (`--relay-resolver`), kept across restarts.</summary>
    IReadOnlyList<string> resolvers = [];

    /// <summary>Changes the controller's options (attestation settings), kept across restarts.</summary>
    Func<FleetOptions, FleetOptions> configure = o => o;

    /// <param name="files">The relay's files and the dev CA.</param>
    /// <param name="resolvers">The relays' upstream resolvers.</param>
    /// <param name="database">A database other than SQLite in <see cref="RelayFiles.Root"/> (a PostgreSQL one); its ticket and
    /// at-rest keys are then made in that folder too.</param>
    /// <param name="configure">Changes the controller's options.</param>
    public static async Task<FleetOverHttps> StartAsync(RelayFiles files, IReadOnlyList<string>? resolvers = null, string? database = null,
        Func<FleetOptions, FleetOptions>? configure = null)
    {
        var fleet = new FleetOverHttps(files, database) { resolvers = resolvers ?? [], configure = configure ?? (o => o) };
        await fleet.StartAsync("https://127.0.0.1:0");
        var staff = fleet.app!.Services.GetRequiredService<StaffService>();
        var enrollment = fleet.app!.Services.GetRequiredService<EnrollmentService>();
        var admin = await staff.CreateStaffAsync("test", "alice", "a long enough password", StaffRole.Admin, CancellationToken.None);
        fleet.AdminToken = await staff.CreateApiTokenAsync(admin, "tests", CancellationToken.None);
        fleet.EnrollmentToken = await enrollment.CreateEnrollmentTokenAsync("alice", "rack-1", CancellationToken.None);
        return fleet;
    }

    async Task StartAsync(string urls)
    {
        bool postgres = database.StartsWith("postgres:", StringComparison.Ordinal);
        app = await FleetServer.CreateAsync(configure(new FleetOptions
        {
            Database = database, Urls = urls, TlsCertificatePath = files.Tls.ServerCertificate, TlsKeyPath = files.Tls.ServerKey,
            LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning, RelayResolvers = resolvers,
            RelayPrivateAddresses = true,   // the relay's uplink in the test namespaces is 10.203.0.1/24
            TicketKeyPath = postgres ? Path.Combine(files.Root, "ticket.key") : null,
            SecretsKeyPath = postgres ? Path.Combine(files.Root, "fleet-secrets.key") : null,
        }));
        await app.StartAsync();
        Address = app.HttpsAddress() ?? throw new InvalidOperationException("no https address");
    }

    public async Task StopAsync()
    {
        if (app is null) return;
        await app.StopAsync();
        await app.DisposeAsync();
        app = null;
    }

    /// <summary>Starts again on the same port and database (the relays' URL stays valid).</summary>
    public Task RestartAsync() => StartAsync($"https://127.0.0.1:{Address.Port}");

    /// <summary>A client that trusts only the dev CA, as staff tools and customers' apps would pin it.</summary>
    public HttpClient Client(string? token = null, string scheme = "Bearer")
    {
        return PinnedHttp.Client(Address, new PinnedTlsRoots(Ca, TimeProvider.System), TimeSpan.FromSeconds(30),
            token is null ? null : new AuthenticationHeaderValue(scheme, token));
    }

    public async Task<T> PostAsync<T>(HttpClient client, string path, object? body, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> reply)
    {
        using var content = body is null ? null : JsonContent.Create(body, body.GetType(), options: FleetJson.Default.Options);
        using var response = await client.PostAsync(path, content);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"POST {path}: {(int)response.StatusCode} {text}");
        return System.Text.Json.JsonSerializer.Deserialize(text, reply)!;
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}

using System.Net.Http.Headers;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Tabula.Fleet.Api;
using Tabula.Fleet.Core;
using Tabula.Fleet.Storage;

namespace Tabula.Fleet.Tests.Support;

/// <summary>A real controller on Kestrel, 127.0.0.1 on a free port, over the given database.</summary>
public sealed class FleetHost : IAsyncDisposable
{
    public required WebApplication App { get; init; }
    public required Uri Address { get; init; }
    public required string Database { get; init; }
    public StaffService Staff => App.Services.GetRequiredService<StaffService>();
    public EnrollmentService Enrollment => App.Services.GetRequiredService<EnrollmentService>();
    public IStore Store => App.Services.GetRequiredService<IStore>();
    public PeerHub Hub => App.Services.GetRequiredService<PeerHub>();
    public MachineEvents MachineEvents => App.Services.GetRequiredService<MachineEvents>();

    /// <summary>The relays' egress settings every test controller is started with (as `--relay-resolver`, `--relay-blocked-prefix`).</summary>
    public static readonly IReadOnlyList<string> Resolvers = ["192.0.2.53", "2001:db8::53"], BlockedPrefixes = ["198.18.0.0/15"];

    /// <summary>
    /// A controller on <paramref name="database"/>. Tests of other things than limits run with every rate budget ×1000 and a
    /// high per-client connection cap (all their clients are 127.0.0.1); <paramref name="configure"/> changes the options.
    /// </summary>
    public static async Task<FleetHost> StartAsync(string database, Func<FleetOptions, FleetOptions>? configure = null, TimeProvider? time = null)
    {
        var options = new FleetOptions
        {
            Database = database, Urls = "http://127.0.0.1:0;h2c://127.0.0.1:0", LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning,
            RelayResolvers = Resolvers, RelayBlockedPrefixes = BlockedPrefixes, TicketKeyPath = TicketKeyPathFor(database),
            SecretsKeyPath = SecretsKeyPathFor(database),
            RateLimits = new FleetRateLimits().Scaled(1000), MaxConnectionsPerClient = 10_000,
        };
        var app = await FleetServer.CreateAsync(configure?.Invoke(options) ?? options, time: time);
        await app.StartAsync();
        var host = new FleetHost { App = app, Address = app.Address(), Database = database };
        await host.Hub.Started;
        return host;
    }

    /// <summary>
    /// SQLite: null, so the controller's default (ticket-key.pem next to the database) is what the tests exercise.
    /// PostgreSQL has no data folder: one key file per database in the temp folder, shared by every instance on it.
    /// </summary>
    public static string? TicketKeyPathFor(string database) => database.StartsWith("postgres:", StringComparison.Ordinal)
        ? Path.Combine(Path.GetTempPath(), "tabula-fleet-ticket-" + Convert.ToHexStringLower(
            System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(database)))[..16] + ".pem")
        : null;

    /// <summary>
    /// The at-rest key's file, as <see cref="TicketKeyPathFor"/>: SQLite null (the default, fleet-secrets.key next to the
    /// database), PostgreSQL one file per database in the temp folder, shared by every instance on it.
    /// </summary>
    public static string? SecretsKeyPathFor(string database) => database.StartsWith("postgres:", StringComparison.Ordinal)
        ? Path.Combine(Path.GetTempPath(), "tabula-fleet-secrets-" + Convert.ToHexStringLower(
            System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(database)))[..16] + ".key")
        : null;

    /// <summary>The key file <see cref="SecretsKeyPathFor"/> or the controller's default names for <paramref name="database"/>.</summary>
    public static string SecretsKeyFile(string database) => SecretsKeyPathFor(database) ?? Security.SecretsKey.DefaultPath(database);

    public Security.TicketKey TicketKey => App.Services.GetRequiredService<Security.TicketKey>();

    /// <summary>A customer account made by staff (POST /api/v1/customers), as the lab and scripts make them.</summary>
    public async Task<AccountView> CreateAccountAsync(string staffToken)
    {
        var response = await Client(staffToken).PostAsJsonAsync("/api/v1/customers", new CreateAccountRequest(null), FleetJson.Default.CreateAccountRequest);
        Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync(FleetJson.Default.AccountView))!;
    }

    /// <summary>A client whose connections come from <paramref name="source"/> (another loopback address, e.g. 127.0.0.2).</summary>
    public HttpClient ClientFrom(System.Net.IPAddress source, string? token = null, string scheme = "Bearer")
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) =>
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                try
                {
                    socket.Bind(new System.Net.IPEndPoint(source, 0));
                    await socket.ConnectAsync(context.DnsEndPoint, ct);
                    return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
                }
                catch { socket.Dispose(); throw; }
            },
        };
        var client = new HttpClient(handler) { BaseAddress = Address, Timeout = TimeSpan.FromSeconds(60) };
        if (token is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue(scheme, token);
        return client;
    }

    public HttpClient Client(string? token = null, string scheme = "Bearer", bool http2 = false)
    {
        var client = new HttpClient { BaseAddress = http2 ? App.H2cAddress() : Address, Timeout = TimeSpan.FromSeconds(60) };
        if (http2)
        {
            client.DefaultRequestVersion = System.Net.HttpVersion.Version20;
            client.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        }
        if (token is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue(scheme, token);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>
/// One controller with staff of every role (real PBKDF2 hashes, API tokens) and an enrollment token,
/// shared by the tests of a class; each test makes its own machines and accounts.
/// </summary>
public abstract class FleetFixture : IAsyncLifetime
{
    private FleetHost? host;
    public FleetHost Host => host ?? throw new InvalidOperationException("no host");
    public bool Available => host is not null;
    public string AdminToken { get; private set; } = "";
    public string OperatorToken { get; private set; } = "";
    public string ViewerToken { get; private set; } = "";
    public string EnrollmentToken { get; private set; } = "";
    public const string AdminPassword = "correct horse battery staple";

    /// <summary>The database to use, or null when its server is not available (skip outside CI).</summary>
    protected abstract Task<string?> DatabaseAsync();

    public async Task InitializeAsync()
    {
        string? database = await DatabaseAsync();
        if (database is null) return;
        host = await FleetHost.StartAsync(database);
        var ct = CancellationToken.None;
        var admin = await host.Staff.CreateStaffAsync("test", "alice", AdminPassword, StaffRole.Admin, ct);
        AdminToken = await host.Staff.CreateApiTokenAsync(admin, "tests", ct);
        OperatorToken = await host.Staff.CreateApiTokenAsync(await host.Staff.CreateStaffAsync("test", "oscar", AdminPassword, StaffRole.Operator, ct), "tests", ct);
        ViewerToken = await host.Staff.CreateApiTokenAsync(await host.Staff.CreateStaffAsync("test", "vera", AdminPassword, StaffRole.Viewer, ct), "tests", ct);
        EnrollmentToken = await host.Enrollment.CreateEnrollmentTokenAsync("test", "relays", ct);
    }

    public virtual async Task DisposeAsync()
    {
        if (host is not null) await host.DisposeAsync();
    }

    private byte[]? adminTotp;
    private long adminLastStep;

    /// <summary>
    /// A TOTP code for alice (an admin: TOTP is required for her password login), enrolled on first use; each call gives a later
    /// step than the last (a code works once), waiting for the clock when a test asks faster than one a step.
    /// </summary>
    public async Task<string> AdminTotpCodeAsync()
    {
        if (adminTotp is null)
        {
            var alice = (await Host.Staff.ListStaffAsync(CancellationToken.None)).Single(s => s.Username == "alice");
            (adminTotp, adminLastStep) = await EnrollTotpAsync(Host.Staff, alice, DateTimeOffset.UtcNow);
        }
        long next = adminLastStep + 1;
        while (next > Security.Totp.StepAt(DateTimeOffset.UtcNow) + 1) await Task.Delay(TimeSpan.FromSeconds(1));
        adminLastStep = next;
        return Security.Totp.Code(adminTotp, next);
    }

    /// <summary>Enrolls TOTP for <paramref name="staff"/> through the service (as POST /me/totp and its confirmation); the secret and the step used.</summary>
    public static async Task<(byte[] Secret, long Step)> EnrollTotpAsync(StaffService service, Staff staff, DateTimeOffset now)
    {
        var (secret, _) = await service.BeginTotpAsync(staff, null, CancellationToken.None);
        long step = Security.Totp.StepAt(now);
        await service.ConfirmTotpAsync(staff, Security.Totp.Code(secret, step), CancellationToken.None);
        return (secret, step);
    }
}

public sealed class SqliteFleetFixture : FleetFixture
{
    private readonly string dir = Directory.CreateTempSubdirectory("tabula-fleet-").FullName;
    protected override Task<string?> DatabaseAsync() => Task.FromResult<string?>("sqlite:" + Path.Combine(dir, "fleet.db"));

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
    }
}

public sealed class PostgresFleetFixture : FleetFixture
{
    protected override Task<string?> DatabaseAsync() => PostgresDatabases.NextAsync();
}

public static class Http
{
    public static async Task<(int Status, ErrorBody? Error)> ErrorOf(HttpResponseMessage response)
    {
        ErrorBody? error = null;
        if (response.Content.Headers.ContentType?.MediaType == "application/json")
            error = await response.Content.ReadFromJsonAsync(FleetJson.Default.ErrorBody);
        return ((int)response.StatusCode, error);
    }

    public static string NewWireGuardKey() => Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    public static string NewDigest() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
}

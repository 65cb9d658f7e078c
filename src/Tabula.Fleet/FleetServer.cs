using Tabula.Fleet.Protocol;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Tabula.Fleet.Api;
using Tabula.Fleet.Core;
using Tabula.Fleet.Storage;

namespace Tabula.Fleet;

/// <summary>Composes the fleet controller: store, core, background pumps and the HTTP API on Kestrel.</summary>
public static class FleetServer
{
    /// <summary>The controller for <paramref name="options"/>, on <paramref name="time"/> (the store's and services' clock; tests move it), not started.</summary>
    public static async Task<WebApplication> CreateAsync(FleetOptions options, CancellationToken ct = default, TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        var customerPolicy = CustomerPolicy.From(options);
        var staffPolicy = StaffPolicy.From(options);
        if (options.MaxConnections < 1 || options.MaxConnectionsPerClient < 1)
            throw new ArgumentException("connection limits must be positive");
        var perClient = new ClientConnectionLimit(options.MaxConnectionsPerClient);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        // Request logs would carry paths and client addresses: keep the framework quiet.
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddFilter("Tabula", options.LogLevel);
        var endpoints = new FleetEndpoints();
        var listens = ParseUrls(options.Urls);
        // Loaded before Kestrel starts, so a bad certificate or key is an error at `serve`, not at the first handshake.
        var tls = LoadTls(options, needed: listens.Any(l => l.Scheme == "https"));
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = FleetLimits.MaxRequestBodyBytes;
            k.Limits.Http2.MaxStreamsPerConnection = 1000;
            k.Limits.MaxConcurrentConnections = options.MaxConnections;
            k.Limits.MaxConcurrentUpgradedConnections = 0;
            k.Limits.RequestHeadersTimeout = FleetLimits.RequestHeadersTimeout;
            // https:// offers HTTP/2 and HTTP/1.1 by ALPN (relays, browsers); http:// serves HTTP/1.1 (browsers, curl,
            // a TLS-terminating load balancer); cleartext HTTP/2 needs "prior knowledge", which Kestrel only speaks on
            // an HTTP/2-only endpoint: h2c://.
            foreach (var (scheme, address, port) in listens)
            {
                k.Listen(address, port, listen =>
                {
                    perClient.Apply(listen);   // first, so a client over its cap costs no TLS handshake
                    listen.Protocols = scheme switch { "https" => HttpProtocols.Http1AndHttp2, "h2c" => HttpProtocols.Http2, _ => HttpProtocols.Http1 };
                    if (scheme == "https")
                        listen.UseHttps(h =>
                        {
                            h.ServerCertificate = tls!.Value.Certificate;
                            h.ServerCertificateChain = tls.Value.Chain;
                            h.SslProtocols = System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13;
                            h.HandshakeTimeout = FleetLimits.TlsHandshakeTimeout;
                        });
                    (scheme switch { "https" => endpoints.Https, "h2c" => endpoints.H2c, _ => endpoints.Http }).Add(listen);
                });
            }
        });
        builder.Services.AddSingleton(endpoints);
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            // The context's own options do not carry over to the framework's options instance: repeat them.
            o.SerializerOptions.PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower;
            o.SerializerOptions.DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull;
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, FleetJson.Default);
        });
        builder.Services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);

        // Made at first start (0600, outside the database); an error here (unreadable, wrong mode) stops `serve` (exit 2).
        var ticketKey = Security.TicketKey.LoadOrCreate(options.TicketKeyPath ?? Security.TicketKey.DefaultPath(options.Database));
        // The same for the at-rest key; a group- or world-readable one is refused, and one that is not the database's too.
        var secrets = Security.SecretsKey.LoadOrCreate(options.SecretsKeyPath ?? Security.SecretsKey.DefaultPath(options.Database));
        // Issue 19: the TPM manufacturer roots and the attestation CA (made at first start like the ticket key).
        var attestationSettings = AttestationSettings.Create(options);
        var store = SqlStore.Open(options.Database, secrets, time);
        try { await store.MigrateAsync(ct); }
        catch
        {
            await store.DisposeAsync();
            secrets.Dispose();
            throw;
        }
        await CheckTicketKeyAsync(store, ticketKey, ct);
        // Issue 17: TOTP for operators and admins is the default; running without it is the operator's choice, on the record at
        // every start of every instance.
        if (!staffPolicy.TotpRequired)
            await store.WriteAsync(async tx =>
            {
                await tx.AuditAsync("controller", "staff.totp-optional", "staff", null,
                    "started with --staff-totp optional: operators and admins log in with a password alone");
                return 0;
            }, ct);
        builder.Services.AddSingleton(ticketKey);
        builder.Services.AddSingleton(attestationSettings);
        builder.Services.AddSingleton<AttestationService>();
        builder.Services.AddSingleton<IStore>(store);
        builder.Services.AddSingleton(time);
        builder.Services.AddSingleton(customerPolicy);
        builder.Services.AddSingleton(staffPolicy);
        builder.Services.AddSingleton(perClient);
        builder.Services.AddSingleton<VoucherService>();
        builder.Services.AddSingleton<TokenService>();
        builder.Services.AddFleetRateLimits(options.RateLimits);
        var pool = new AddressPool(options.Ipv4Pool, options.Ipv6Pool);
        builder.Services.AddSingleton(pool);
        builder.Services.AddSingleton(RelayEgressSettings.Create(options, pool, listens.Where(l => l.Scheme == "https").Select(l => l.Address)));
        builder.Services.AddSingleton<FleetMetrics>();
        builder.Services.AddSingleton<RelayHealthBoard>();
        builder.Services.AddSingleton<HealthSampler>();
        builder.Services.AddSingleton<MachineEvents>();
        builder.Services.AddSingleton<PeerHub>();
        builder.Services.AddSingleton<StaffService>();
        builder.Services.AddSingleton<EnrollmentService>();
        builder.Services.AddSingleton<MachineService>();
        builder.Services.AddSingleton<CustomerService>();
        builder.Services.AddSingleton<ReleaseService>();
        builder.Services.AddSingleton<TicketService>();
        builder.Services.AddSingleton<PeerStream>();
        builder.Services.AddSingleton(new RolloutSettings(options.RebootCommandLifetime > TimeSpan.Zero ? options.RebootCommandLifetime : FleetLimits.RebootCommandLifetime));
        builder.Services.AddSingleton<RolloutService>();
        builder.Services.AddHostedService<Background>();
        builder.Services.AddHostedService<RolloutEngine>();

        var app = builder.Build();
        // Key material is zeroed once the server stopped (no request runs any more).
        app.Lifetime.ApplicationStopped.Register(secrets.Dispose);
        if (attestationSettings.Ca is { } attestationCa) app.Lifetime.ApplicationStopped.Register(attestationCa.Dispose);
        app.Use(ErrorMapping.Middleware);
        app.UseRouting();
        if (options.RateLimits.Enabled) app.UseRateLimiter();
        app.MapStaff();
        app.MapVouchers();
        app.MapTokens();
        app.MapMachines();
        app.MapRelays();
        app.MapCustomers();
        app.MapPublic();
        app.MapReleases();
        app.MapBoot();
        app.MapRollouts();
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
            Log.Listening(app.Services.GetRequiredService<ILogger<PeerHub>>(), string.Join(", ", addresses), store.Kind);
            if (!staffPolicy.TotpRequired) Log.StaffTotpOptional(app.Services.GetRequiredService<ILogger<PeerHub>>());
        });
        return app;
    }

    /// <summary>
    /// The fleet has one ticket key: the first instance records its public half in the database, and an instance with
    /// another key (a forgotten copy on a second host) refuses to start, since stboot would refuse every ticket it signs.
    /// </summary>
    private static async Task CheckTicketKeyAsync(IStore store, Security.TicketKey key, CancellationToken ct)
    {
        string mine = Convert.ToHexStringLower(key.PublicKey);
        string fleet = await store.WriteAsync(tx => tx.SetSettingIfAbsentAsync("ticket_key_ed25519", mine), ct);
        if (fleet != mine)
        {
            await store.DisposeAsync();
            throw new ArgumentException($"the ticket key {key.Path} is not this fleet's (the database names public key {fleet[..16]}…, this file " +
                                        $"{mine[..16]}…): give every instance the same --ticket-key file");
        }
    }

    /// <summary>The first http:// listen address after start (tests bind port 0).</summary>
    public static Uri Address(this WebApplication app) => app.Services.GetRequiredService<FleetEndpoints>().Http.Select(Bound).First();

    /// <summary>The first h2c:// (HTTP/2 with prior knowledge) listen address after start, if any.</summary>
    public static Uri? H2cAddress(this WebApplication app) => app.Services.GetRequiredService<FleetEndpoints>().H2c.Select(Bound).FirstOrDefault();

    /// <summary>The first https:// listen address after start, if any.</summary>
    public static Uri? HttpsAddress(this WebApplication app) =>
        app.Services.GetRequiredService<FleetEndpoints>().Https.Select(l => new Uri($"https://{l.IPEndPoint}")).FirstOrDefault();

    private static Uri Bound(ListenOptions listen) => new($"http://{listen.IPEndPoint}");

    public sealed class FleetEndpoints
    {
        public List<ListenOptions> Http { get; } = [];
        public List<ListenOptions> H2c { get; } = [];
        public List<ListenOptions> Https { get; } = [];
    }

    /// <summary>"http", "h2c" or "https" with an IP literal (or localhost) and a port, per ';'-separated URL.</summary>
    private static List<(string Scheme, System.Net.IPAddress Address, int Port)> ParseUrls(string urls)
    {
        var parsed = new List<(string, System.Net.IPAddress, int)>();
        foreach (string url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            bool h2c = url.StartsWith("h2c://", StringComparison.Ordinal);
            if (!Uri.TryCreate(h2c ? "http://" + url["h2c://".Length..] : url, UriKind.Absolute, out var uri)
                || uri.Scheme is not ("http" or "https")
                || !(uri.Host == "localhost" || System.Net.IPAddress.TryParse(uri.Host.Trim('[', ']'), out _)))
                throw new ArgumentException($"listen addresses are https://IP:PORT, http://IP:PORT or h2c://IP:PORT (IP literal or localhost), not {url}");
            var address = uri.Host == "localhost" ? System.Net.IPAddress.Loopback : System.Net.IPAddress.Parse(uri.Host.Trim('[', ']'));
            parsed.Add((h2c ? "h2c" : uri.Scheme, address, uri.Port));
        }
        return parsed;
    }

    /// <summary>The server certificate (with its key) and the rest of the PEM chain, or null when no https:// address needs them.</summary>
    private static (X509Certificate2 Certificate, X509Certificate2Collection Chain)? LoadTls(FleetOptions options, bool needed)
    {
        bool given = options.TlsCertificatePath is not null || options.TlsKeyPath is not null;
        if (!needed)
            return given ? throw new ArgumentException("a TLS certificate is set but no listen address is https://") : null;
        if (string.IsNullOrEmpty(options.TlsCertificatePath) || string.IsNullOrEmpty(options.TlsKeyPath))
            throw new ArgumentException("https:// listen addresses need a certificate and its key (--tls-cert, --tls-key; make them with `tabula fleet tls init`)");
        try
        {
            var certificate = X509Certificate2.CreateFromPemFile(options.TlsCertificatePath, options.TlsKeyPath);
            var chain = new X509Certificate2Collection();
            chain.ImportFromPemFile(options.TlsCertificatePath);
            // Intermediates only: the leaf is ServerCertificate; sending the chain lets a relay that pins the root verify it.
            foreach (var cert in chain.Where(c => c.Thumbprint == certificate.Thumbprint).ToList())
                chain.Remove(cert);
            return (certificate, chain);
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or ArgumentException or IOException
                                      or UnauthorizedAccessException)
        {
            throw new ArgumentException($"cannot load the TLS certificate {options.TlsCertificatePath} with key {options.TlsKeyPath}: {e.Message}", e);
        }
    }

    /// <summary>The peer pump, the notification listener, log compaction, boot ticket pruning and health samples.</summary>
    private sealed class Background(IStore store, PeerHub hub, MachineEvents machineEvents, TicketService tickets, RelayHealthBoard health,
        HealthSampler sampler,
        ILogger<PeerHub> logger) : BackgroundService
    {
        protected override Task ExecuteAsync(CancellationToken ct) => Task.WhenAll(
            hub.RunAsync(ct),
            store.ListenAsync(OnNotificationAsync, ct),
            CompactAsync(ct),
            SampleHealthAsync(ct));

        /// <summary>The dashboard's health samples (issue 18), one per interval; a failed one is logged and the next is taken.</summary>
        private async Task SampleHealthAsync(CancellationToken ct)
        {
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(FleetLimits.HealthSampleInterval, ct);
                    await sampler.SampleAsync(ct);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
                catch (System.Data.Common.DbException e) { Log.Unexpected(logger, e); }
            }
        }

        /// <summary>Called for every notification from any instance (PostgreSQL NOTIFY).</summary>
        private Task OnNotificationAsync(string payload)
        {
            if (payload is "peers" or "listening") hub.Poke();
            if (payload is "machines" or "listening") machineEvents.Changed();
            if (payload.StartsWith(RelayHealthBoard.NotificationPrefix, StringComparison.Ordinal)) health.ReportNotification(payload);
            return Task.CompletedTask;
        }

        private async Task CompactAsync(CancellationToken ct)
        {
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromMinutes(10), ct);
                    // Applied reports and transitions scrub too; this covers a fleet with no streaming relay at all.
                    await store.WriteAsync(tx => tx.ScrubDeletedKeysAsync(), ct);
                    // Guessed usernames' failed logins only carry backoff: forgotten after a quiet day (staff members' stay).
                    await store.WriteAsync(tx => tx.PruneLoginFailuresAsync(
                        tx.Now - (long)FleetLimits.LoginUnknownUsernameMemory.TotalMilliseconds), ct);
                    await tickets.PruneAsync(ct);
                    long before = hub.Head - FleetLimits.RetainedPeerChanges;
                    if (before <= 0) continue;
                    int removed = await store.WriteAsync(tx => tx.CompactChangesAsync(before), ct);
                    if (removed > 0) Log.Compacted(logger, removed, before);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
                catch (System.Data.Common.DbException e) { Log.Unexpected(logger, e); }
            }
        }
    }
}

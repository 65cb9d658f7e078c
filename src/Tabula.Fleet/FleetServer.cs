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
    public static async Task<WebApplication> CreateAsync(FleetOptions options, CancellationToken ct = default)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        // Request logs would carry paths and client addresses: keep the framework quiet.
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddFilter("Tabula", options.LogLevel);
        var endpoints = new FleetEndpoints();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = FleetLimits.MaxRequestBodyBytes;
            k.Limits.Http2.MaxStreamsPerConnection = 1000;
            // http:// serves HTTP/1.1 (browsers, curl, a TLS-terminating load balancer); cleartext HTTP/2 needs
            // "prior knowledge", which Kestrel only speaks on an HTTP/2-only endpoint: h2c://.
            foreach (string url in options.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                bool h2c = url.StartsWith("h2c://", StringComparison.Ordinal);
                var uri = new Uri(h2c ? "http://" + url["h2c://".Length..] : url);
                if (uri.Scheme != "http") throw new ArgumentException($"listen addresses are http://HOST:PORT or h2c://HOST:PORT, not {url}");
                var address = uri.Host == "localhost" ? System.Net.IPAddress.Loopback : System.Net.IPAddress.Parse(uri.Host.Trim('[', ']'));
                k.Listen(address, uri.Port, listen =>
                {
                    listen.Protocols = h2c ? HttpProtocols.Http2 : HttpProtocols.Http1;
                    (h2c ? endpoints.H2c : endpoints.Http).Add(listen);
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

        var store = SqlStore.Open(options.Database);
        await store.MigrateAsync(ct);
        builder.Services.AddSingleton<IStore>(store);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(new AddressPool(options.Ipv4Pool, options.Ipv6Pool));
        builder.Services.AddSingleton<FleetMetrics>();
        builder.Services.AddSingleton<RelayHealthBoard>();
        builder.Services.AddSingleton<MachineEvents>();
        builder.Services.AddSingleton<PeerHub>();
        builder.Services.AddSingleton<FleetCore>();
        builder.Services.AddSingleton<PeerStream>();
        builder.Services.AddHostedService<Background>();

        var app = builder.Build();
        app.Use(ErrorMapping.Middleware);
        app.MapStaff();
        app.MapMachines();
        app.MapRelays();
        app.MapCustomers();
        app.MapPublic();
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
            Log.Listening(app.Services.GetRequiredService<ILogger<FleetCore>>(), string.Join(", ", addresses), store.Kind);
        });
        return app;
    }

    /// <summary>The first http:// listen address after start (tests bind port 0).</summary>
    public static Uri Address(this WebApplication app) => app.Services.GetRequiredService<FleetEndpoints>().Http.Select(Bound).First();

    /// <summary>The first h2c:// (HTTP/2 with prior knowledge) listen address after start, if any.</summary>
    public static Uri? H2cAddress(this WebApplication app) => app.Services.GetRequiredService<FleetEndpoints>().H2c.Select(Bound).FirstOrDefault();

    private static Uri Bound(ListenOptions listen) => new($"http://{listen.IPEndPoint}");

    public sealed class FleetEndpoints
    {
        public List<ListenOptions> Http { get; } = [];
        public List<ListenOptions> H2c { get; } = [];
    }

    /// <summary>The peer pump, the notification listener and log compaction.</summary>
    private sealed class Background(FleetCore core, ILogger<FleetCore> logger) : BackgroundService
    {
        protected override Task ExecuteAsync(CancellationToken ct) => Task.WhenAll(
            core.Hub.RunAsync(ct),
            core.Store.ListenAsync(core.OnNotificationAsync, ct),
            CompactAsync(ct));

        private async Task CompactAsync(CancellationToken ct)
        {
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromMinutes(10), ct);
                    long before = core.Hub.Head - FleetLimits.RetainedPeerChanges;
                    if (before <= 0) continue;
                    int removed = await core.Store.WriteAsync(tx => tx.CompactChangesAsync(before), ct);
                    if (removed > 0) Log.Compacted(logger, removed, before);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
                catch (System.Data.Common.DbException e) { Log.Unexpected(logger, e); }
            }
        }
    }
}

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
        builder.WebHost.UseUrls(options.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = FleetLimits.MaxRequestBodyBytes;
            k.Limits.Http2.MaxStreamsPerConnection = 1000;
            k.ConfigureEndpointDefaults(e => e.Protocols = HttpProtocols.Http1AndHttp2);
        });
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

    /// <summary>The first listen address after start (tests bind port 0).</summary>
    public static Uri Address(this WebApplication app) =>
        new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

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

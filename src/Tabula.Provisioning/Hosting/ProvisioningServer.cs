using System.Net;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tabula.Provisioning.Core;
using Tabula.Provisioning.Http;
using Tabula.Provisioning.Storage;
using Tabula.Provisioning.Transport;

namespace Tabula.Provisioning.Hosting;

/// <summary>Builds the provisioning server from validated options. Used by <c>tabula provisioning serve</c> and
/// by the tests, so both run the same pipeline: metrics → JSON errors → routing → rate limits → timeouts.</summary>
public static class ProvisioningServer
{
    /// <summary>Reads the config file, then <c>TABULA_*</c> environment variables, then
    /// <paramref name="overrides"/>; relative paths in the file are relative to the file.</summary>
    public static ProvisioningOptions LoadOptions(string? configFile,
        IEnumerable<KeyValuePair<string, string?>>? overrides = null)
    {
        var builder = new ConfigurationBuilder();
        string baseDir = Directory.GetCurrentDirectory();
        if (configFile is not null)
        {
            string full = Path.GetFullPath(configFile);
            if (!File.Exists(full))
                throw new ProvisioningConfigException($"config file {configFile} does not exist");
            baseDir = Path.GetDirectoryName(full)!;
            builder.AddJsonFile(full, optional: false, reloadOnChange: false);
        }
        builder.AddEnvironmentVariables("TABULA_");
        if (overrides is not null)
            builder.AddInMemoryCollection(overrides);
        var options = new ProvisioningOptions();
        try
        {
            builder.Build().Bind(options);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or InvalidDataException)
        {
            throw new ProvisioningConfigException($"configuration is invalid: {e.Message}", e);
        }
        options.StoreDirectory = Resolve(baseDir, options.StoreDirectory)!;
        options.TrustPolicyDirectory = Resolve(baseDir, options.TrustPolicyDirectory)!;
        options.Tls.CertificatePath = Resolve(baseDir, options.Tls.CertificatePath);
        options.Tls.KeyPath = Resolve(baseDir, options.Tls.KeyPath);
        return options;
    }

    static string? Resolve(string baseDir, string? path) =>
        string.IsNullOrEmpty(path) ? path : Path.GetFullPath(path, baseDir);

    /// <summary>Checks the options; the message names each offending key.</summary>
    public static ListenEndpoint Validate(ProvisioningOptions options)
    {
        var result = new ProvisioningOptionsValidator().Validate(null, options);
        if (result.Failed)
            throw new ProvisioningConfigException("configuration is invalid: " + result.FailureMessage);
        if (!ListenEndpoint.TryParse(options.Listen, out var listen))
            throw new ProvisioningConfigException(
                $"Listen must be https://IP:PORT or http://IP:PORT (IP literal or localhost), got '{options.Listen}'");
        if (listen.Https && (string.IsNullOrEmpty(options.Tls.CertificatePath) || string.IsNullOrEmpty(options.Tls.KeyPath)))
            throw new ProvisioningConfigException(
                "Tls:CertificatePath and Tls:KeyPath are required for https (make them with `tabula provisioning tls init`)");
        if (!Directory.Exists(options.TrustPolicyDirectory))
            throw new ProvisioningConfigException($"TrustPolicyDirectory {options.TrustPolicyDirectory} does not exist");
        var l = options.Limits;
        if (l.MaxArchiveBytes <= 0 || l.MaxDescriptorBytes <= 0 || l.MaxJsonBodyBytes <= 0 || l.StaffRequestsPerMinute <= 0
            || l.MachineRequestsPerSecond <= 0 || l.MaxConcurrentConnections <= 0 || l.MinUploadBytesPerSecond <= 0
            || l.MaxConnectionsPerClient <= 0)
            throw new ProvisioningConfigException("every value under Limits must be positive");
        if (l.MinRateGraceSeconds < 2)
            throw new ProvisioningConfigException("Limits:MinRateGraceSeconds must be at least 2 (Kestrel's minimum grace)");
        if (options.PublicBaseUrl is { Length: > 0 } url
            && (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http")))
            throw new ProvisioningConfigException("PublicBaseUrl must be an absolute http(s) URL");
        return listen;
    }

    /// <summary>Builds the web application. <paramref name="verifier"/> decides what packages are accepted.</summary>
    public static WebApplication Build(ProvisioningOptions options, IPackageVerifier verifier,
        TimeProvider? time = null, LogLevel minimumLevel = LogLevel.Information)
    {
        var listen = Validate(options);
        var store = new FileStore(options.StoreDirectory, options.Limits.MaxGroupFileBytes);
        TlsContext? tls = listen.Https ? LoadTls(options.Tls) : null;

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = "Tabula.Provisioning",
            ContentRootPath = store.Root,
        });
        ConfigureLogging(builder.Logging, minimumLevel);
        var metrics = new ProvisioningMetrics();
        ConfigureKestrel(builder, listen, options.Limits, tls, new ClientConnectionLimit(options.Limits.MaxConnectionsPerClient, metrics));
        AddServices(builder.Services, options, store, verifier, time ?? TimeProvider.System, metrics);
        AddRateLimits(builder.Services, options.Limits);

        var app = builder.Build();
        UsePipeline(app);
        MapEndpoints(app);
        app.Lifetime.ApplicationStarted.Register(() =>
            app.Logger.Listening(string.Join(", ", BoundAddresses(app)), store.Root));
        return app;
    }

    static TlsContext LoadTls(TlsOptions files)
    {
        try
        {
            return TlsContext.Create(files.CertificatePath!, files.KeyPath!, ListenProtocols);
        }
        catch (TlsTransportException e)
        {
            throw new ProvisioningConfigException($"cannot load the TLS certificate or key: {e.Message}", e);
        }
    }

    static void ConfigureLogging(ILoggingBuilder logging, LogLevel minimumLevel)
    {
        logging.ClearProviders();
        logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ssZ ";
            o.UseUtcTimestamp = true;
        });
        logging.SetMinimumLevel(minimumLevel);
        // ASP.NET's own request and connection logs carry paths with machine labels and, at Debug, client
        // addresses: keep them to warnings.
        logging.AddFilter("Microsoft", LogLevel.Warning);
        logging.AddFilter("System", LogLevel.Warning);
    }

    static void ConfigureKestrel(WebApplicationBuilder builder, ListenEndpoint listen, ProvisioningLimits limits, TlsContext? tls,
        ClientConnectionLimit perClient)
    {
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = limits.MaxDescriptorBytes;
            k.Limits.MaxConcurrentConnections = limits.MaxConcurrentConnections;
            k.Limits.MaxConcurrentUpgradedConnections = 0;
            // Let a file copy run ahead of the socket by more than Kestrel's 64 KiB default: fewer stalls per
            // archive download under TLS (bench/provisioning-vs-nginx.sh).
            k.Limits.MaxResponseBufferSize = ProvisioningLimits.ResponseBufferBytes;
            k.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(limits.RequestHeadersTimeoutSeconds);
            k.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(limits.KeepAliveTimeoutSeconds);
            k.Limits.MinRequestBodyDataRate = new MinDataRate(limits.MinUploadBytesPerSecond,
                TimeSpan.FromSeconds(limits.MinRateGraceSeconds));
            // With https, the listener's transport terminates TLS itself (Transport/): Kestrel sees plaintext.
            k.Listen(listen.Address, listen.Port, lo =>
            {
                lo.Protocols = tls is null ? HttpProtocols.Http1 : ListenProtocols;
                // First: a client over its cap is closed before its handshake is awaited.
                perClient.Apply(lo);
                if (tls is not null)
                    TlsSocketTransportFactory.UseTransportTls(lo);
            });
        });
        if (tls is not null)
        {
            // Registered after Kestrel's socket transport, so Kestrel binds with this one (it asks the last first).
            // Made by the container, so that the host disposes it (readiness thread, OpenSSL context).
            // The handshake is bounded like the request headers after it (slowloris).
            var transport = new TlsTransportOptions(TimeSpan.FromSeconds(limits.RequestHeadersTimeoutSeconds),
                TlsResponseBufferBytes);
            builder.Services.AddSingleton<IConnectionListenerFactory>(_ => new TlsSocketTransportFactory(tls, transport));
        }
    }

    static void AddServices(IServiceCollection services, ProvisioningOptions options, FileStore store,
        IPackageVerifier verifier, TimeProvider time, ProvisioningMetrics metrics)
    {
        var limits = options.Limits;
        services.ConfigureHttpJsonOptions(o =>
        {
            // Same wire shape as the source-generated context (snake_case, as ST's own JSON files).
            o.SerializerOptions.PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower;
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, ProvisioningJsonContext.Default);
        });
        services.AddSingleton(options);
        services.AddSingleton(limits);
        services.AddSingleton<IStore>(store);
        services.AddSingleton(verifier);
        services.AddSingleton(time);
        services.AddSingleton(metrics);
        services.AddSingleton<StaffAuth>();
        services.AddSingleton(sp => new ProvisioningCore(store, verifier, sp.GetRequiredService<TimeProvider>(),
            limits, options.PublicBaseUrl));
        services.AddRequestTimeouts(o => o.AddPolicy(ServerPolicies.Staff,
            TimeSpan.FromSeconds(limits.StaffRequestTimeoutSeconds)));
    }

    static void AddRateLimits(IServiceCollection services, ProvisioningLimits limits)
    {
        services.AddRateLimiter(o =>
        {
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            o.OnRejected = (ctx, _) => new ValueTask(Errors.WriteAsync(ctx.HttpContext, StatusCodes.Status429TooManyRequests,
                new ErrorBody("rate_limited", "too many requests; retry later")));
            // The client address is only an in-memory partition key here: never logged, never exported.
            o.AddPolicy(ServerPolicies.Machines, ctx => RateLimitPartition.GetTokenBucketLimiter(
                PartitionKey(ctx), _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = limits.MachineRequestsPerSecond,
                    TokensPerPeriod = limits.MachineRequestsPerSecond,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                }));
            o.AddPolicy(ServerPolicies.Staff, ctx => RateLimitPartition.GetTokenBucketLimiter(
                PartitionKey(ctx), _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = limits.StaffRequestsPerMinute,
                    TokensPerPeriod = limits.StaffRequestsPerMinute,
                    ReplenishmentPeriod = TimeSpan.FromMinutes(1),
                    QueueLimit = 0,
                }));
        });
    }

    /// <summary>metrics → JSON errors → routing → rate limits → timeouts.</summary>
    static void UsePipeline(WebApplication app)
    {
        var metrics = app.Services.GetRequiredService<ProvisioningMetrics>();
        app.Use(async (http, next) =>
        {
            await next(http);
            string endpoint = http.GetEndpoint()?.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName ?? "unmatched";
            long bytes = HttpMethods.IsGet(http.Request.Method) && http.Response.StatusCode is 200 or 206
                ? http.Response.ContentLength ?? 0
                : 0;
            metrics.Request(endpoint, http.Response.StatusCode, bytes);
        });
        app.Use(Errors.HandleAsync);
        app.UseRouting();
        app.UseRateLimiter();
        app.UseRequestTimeouts();
    }

    static void MapEndpoints(WebApplication app)
    {
        app.MapGet("/healthz", (IStore s) => Directory.Exists(((FileStore)s).Root)
                ? Results.Json(new HealthResponse("ok"), ProvisioningJsonContext.Default.HealthResponse)
                : Results.Json(new HealthResponse("store missing"), ProvisioningJsonContext.Default.HealthResponse, statusCode: 503))
            .WithName("healthz");
        app.MapGet("/metrics", (ProvisioningMetrics m) => Results.Text(m.Render(), "text/plain; version=0.0.4"))
            .WithName("metrics");
        app.MapMachineEndpoints();
        app.MapStaffEndpoints();
    }

    /// <summary>The addresses Kestrel bound (the real port when configured with port 0).</summary>
    public static IReadOnlyList<string> BoundAddresses(WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.ToArray() ?? [];

    /// <summary>Response bytes a TLS connection may hold before Kestrel's writes wait: four file chunks. More only
    /// keeps more blocks in flight (bench/provisioning-vs-nginx.sh).</summary>
    const int TlsResponseBufferBytes = 4 * BlockPool.BlockBytes;

    /// <summary>What the https listener offers through ALPN (h2, then http/1.1). Plain http has no ALPN, so it
    /// listens with HTTP/1.1 only.</summary>
    const HttpProtocols ListenProtocols = HttpProtocols.Http1AndHttp2;

    static string PartitionKey(HttpContext http) => http.Connection.RemoteIpAddress?.ToString() ?? "";
}

/// <summary>A parsed <c>Listen</c> value.</summary>
public sealed record ListenEndpoint(bool Https, IPAddress Address, int Port)
{
    public static bool TryParse(string? value, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out ListenEndpoint? endpoint)
    {
        endpoint = null;
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http")
            || uri.AbsolutePath != "/" || !string.IsNullOrEmpty(uri.Query) || uri.Port is < 0 or > 65535)
            return false;
        IPAddress? address = uri.Host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) ? ip : null;
        if (address is null)
            return false;
        endpoint = new ListenEndpoint(uri.Scheme == "https", address, uri.Port);
        return true;
    }
}

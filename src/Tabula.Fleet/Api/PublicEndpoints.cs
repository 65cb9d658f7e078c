using Tabula.Fleet.Protocol;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tabula.Fleet.Core;

namespace Tabula.Fleet.Api;

/// <summary>GET /app/v1/relays (the client relay list, with a strong ETag), GET /metrics, GET /dashboard.</summary>
public static class PublicEndpoints
{
    private sealed record CachedList(long Version, byte[] Body, string ETag);
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<MachineService, CachedList> Cache = new();

    public static void MapPublic(this IEndpointRouteBuilder app)
    {
        app.MapGet("/app/v1/relays", RelayList).RequireRateLimiting(RateLimits.RelayList);
        app.MapGet("/metrics", Metrics).RequireRateLimiting(RateLimits.Public);
        // The attestation CA (issue 19): what AK certificates in the relay list are issued under. Public, like the list.
        app.MapGet("/app/v1/attestation-ca", (AttestationSettings attestation) => attestation.Ca is { } ca
            ? Results.Text(ca.CertificatePem, "application/x-pem-file")
            : throw new FleetException(FleetError.NotFound, "this fleet issues no AK certificates (no --attestation-ca)")).RequireRateLimiting(RateLimits.Public);
        app.MapGet("/", () => TypedResults.Redirect("/dashboard")).RequireRateLimiting(RateLimits.Public);
        app.MapGet("/dashboard", (HttpContext http) => DashboardAsset(http, "dashboard.html")).RequireRateLimiting(RateLimits.Public);
        // The page's script, style and the vendored chart library (issue 18): files of this assembly, so the CSP allows no
        // inline script or style at all.
        app.MapGet("/dashboard/{file}", (string file, HttpContext http) => DashboardAsset(http, file)).RequireRateLimiting(RateLimits.Public);
    }

    /// <summary>
    /// The dashboard's files (embedded resources, issue 18) by name with their media types; any other name is 404. Served
    /// under a CSP that allows scripts, styles and fetches from this origin only, no framing, no forms posted anywhere.
    /// </summary>
    internal static readonly IReadOnlyDictionary<string, string> DashboardFiles = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["dashboard.html"] = "text/html; charset=utf-8",
        ["dashboard.js"] = "text/javascript; charset=utf-8",
        ["dashboard.css"] = "text/css; charset=utf-8",
        ["uPlot.iife.min.js"] = "text/javascript; charset=utf-8",
        ["uPlot.min.css"] = "text/css; charset=utf-8",
        ["uPlot.LICENSE"] = "text/plain; charset=utf-8",
    };

    /// <summary>The CSP of every dashboard file: nothing inline, nothing from another origin.</summary>
    public const string DashboardCsp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
                                       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private static IResult DashboardAsset(HttpContext http, string file)
    {
        if (!DashboardFiles.TryGetValue(file, out string? type)) return TypedResults.NotFound();
        var headers = http.Response.Headers;
        headers.ContentSecurityPolicy = DashboardCsp;
        headers["X-Frame-Options"] = "DENY";
        headers["X-Content-Type-Options"] = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers.CacheControl = "no-cache";
        using var stream = typeof(PublicEndpoints).Assembly.GetManifestResourceStream("dashboard/" + file)!;
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return TypedResults.Bytes(memory.ToArray(), type);
    }

    private static async Task RelayList(HttpContext http, MachineService machines, MachineEvents events, AddressPool pool)
    {
        long version = events.Version;
        if (!Cache.TryGetValue(machines, out var cached) || cached.Version != version)
        {
            var listed = await machines.ListMachinesAsync(null, http.RequestAborted);
            var attested = await machines.AttestationsAsync(http.RequestAborted);
            byte[] body = JsonSerializer.SerializeToUtf8Bytes(Build(listed, pool, attested), FleetJson.Default.RelayList);
            cached = new CachedList(version, body, "\"" + Convert.ToHexStringLower(SHA256.HashData(body)[..16]) + "\"");
            Cache.AddOrUpdate(machines, cached);
        }
        http.Response.Headers.ETag = cached.ETag;
        http.Response.Headers.CacheControl = "no-cache";
        if (http.Request.Headers.IfNoneMatch.Any(v => v is not null && v.Split(',').Any(t => t.Trim() == cached.ETag || t.Trim() == "*")))
        {
            http.Response.StatusCode = StatusCodes.Status304NotModified;
            return;
        }
        http.Response.ContentType = "application/json";
        await http.Response.Body.WriteAsync(cached.Body, http.RequestAborted);
    }

    /// <summary>Deployed relays are active; draining ones stay listed as inactive so clients move away.</summary>
    internal static RelayList Build(IEnumerable<Machine> machines, AddressPool pool, IReadOnlyDictionary<string, MachineAttestation>? attested = null)
    {
        var locations = new SortedDictionary<string, LocationView>(StringComparer.Ordinal);
        var relays = new List<RelayView>();
        var ports = new SortedSet<int>();
        foreach (var m in machines.Where(m => m.State is MachineState.Deployed or MachineState.Draining && m.Placement is not null)
                                  .OrderBy(m => m.Placement!.Hostname, StringComparer.Ordinal))
        {
            var p = m.Placement!;
            string location = $"{p.CountryCode}-{p.CityCode}";
            // Placements stored before coordinates existed take the city table's, or 0/0 when it does not know the city.
            bool known = CityTable.TryGet(p.CountryCode, p.CityCode, out double cityLatitude, out double cityLongitude);
            double latitude = p.Latitude ?? (known ? cityLatitude : 0);
            double longitude = p.Longitude ?? (known ? cityLongitude : 0);
            locations[location] = new LocationView(p.Country, p.City, latitude, longitude);
            ports.Add(p.Port);
            relays.Add(new RelayView(p.Hostname, location, m.State == MachineState.Deployed, p.Owned, p.Provider, p.Ipv4AddrIn, p.Ipv6AddrIn,
                p.IncludeInCountry, p.Weight, WireGuardPublicKey.FromBytes(m.WireGuardKey).ToBase64(), m.PackageDigest)
                .WithAttestation(attested?.GetValueOrDefault(m.Id)));
        }
        return new RelayList(locations, new WireguardRelays([.. ports.Select(p => new[] { p, p })], pool.Ipv4Gateway, pool.Ipv6Gateway, relays),
            new BridgeRelays([], []));
    }

    private static async Task Metrics(HttpContext http, FleetMetrics metrics, MachineService machines, CustomerService customers, RelayHealthBoard health)
    {
        var byState = await machines.CountByStateAsync(http.RequestAborted);
        var (devices, accounts, head) = await customers.CountsAsync(http.RequestAborted);
        var sb = new StringBuilder();
        FleetMetrics.AppendGauge(sb, "tabula_fleet_machines", "Machines by lifecycle state.",
            byState.OrderBy(kv => kv.Key).Select(kv => ((string?)$"state=\"{kv.Key.Name()}\"", kv.Value)));
        FleetMetrics.AppendGauge(sb, "tabula_fleet_devices", "Customer devices (WireGuard peers).", [(null, devices)]);
        FleetMetrics.AppendGauge(sb, "tabula_fleet_accounts", "Customer accounts.", [(null, accounts)]);
        FleetMetrics.AppendGauge(sb, "tabula_fleet_peer_revision", "Head revision of the peer log.", [(null, head)]);
        var reports = health.All();
        FleetMetrics.AppendGauge(sb, "tabula_fleet_relay_handshakes_last_minute", "Sum over relays' latest health reports of peers with a handshake in the last minute.",
            [(null, reports.Sum(r => r.Value.HandshakesLastMinute))]);
        // Per relay by its public hostname (already in the relay list, so no new fact), totals of its latest report.
        var hostnames = (await machines.ListMachinesAsync(null, http.RequestAborted))
            .Where(m => m.Placement is not null).ToDictionary(m => m.Id, m => m.Placement!.Hostname, StringComparer.Ordinal);
        var named = reports.Where(r => hostnames.ContainsKey(r.Key)).Select(r => (Label: $"relay=\"{hostnames[r.Key]}\"", r.Value.Egress)).ToList();
        FleetMetrics.AppendGauge(sb, "tabula_fleet_relay_forwarded_packets", "Packets the relay forwarded between tunnel and uplink (its latest health report).",
            named.Select(n => ((string?)n.Label, n.Egress.ForwardedPackets)));
        FleetMetrics.AppendGauge(sb, "tabula_fleet_relay_forwarded_bytes", "Bytes the relay forwarded between tunnel and uplink.",
            named.Select(n => ((string?)n.Label, n.Egress.ForwardedBytes)));
        FleetMetrics.AppendGauge(sb, "tabula_fleet_relay_isolation_dropped_packets", "Packets the relay dropped for going customer to customer, to a private range or to the relay.",
            named.Select(n => ((string?)n.Label, n.Egress.IsolationDroppedPackets)));
        FleetMetrics.AppendGauge(sb, "tabula_fleet_relay_nat_entries", "Source-NAT entries in the relay's connection tracking table.",
            named.Select(n => ((string?)n.Label, n.Egress.NatEntries)));
        FleetMetrics.AppendGauge(sb, "tabula_fleet_relay_dns_queries_answered", "Queries the relay's in-tunnel resolver answered.",
            named.Select(n => ((string?)n.Label, n.Egress.DnsQueriesAnswered)));
        var shares = reports.Where(r => hostnames.ContainsKey(r.Key)).Select(r => (Label: $"relay=\"{hostnames[r.Key]}\"", r.Value.PeerSet)).ToList();
        FleetMetrics.AppendGauge(sb, "tabula_fleet_relay_peers_pending", "Peers of the set the relay's device lacks for room (its peer limit, or the device refused more).",
            shares.Select(s => ((string?)s.Label, s.PeerSet.Pending)));
        FleetMetrics.AppendGauge(sb, "tabula_fleet_relay_peers_outside_pool", "Peers the relay refused because their tunnel addresses lie outside its pools.",
            shares.Select(s => ((string?)s.Label, s.PeerSet.OutsidePool)));
        FleetMetrics.AppendGauge(sb, "tabula_fleet_relay_partial_apply", "1 when the relay's device serves only part of the peer set.",
            shares.Select(s => ((string?)s.Label, s.PeerSet.Partial ? 1L : 0L)));
        FleetMetrics.AppendGauge(sb, "tabula_fleet_relay_reports", "Relays with a health report since this instance started.", [(null, reports.Count)]);
        FleetMetrics.AppendGauge(sb, metrics.Subscribers.Name, metrics.Subscribers.Help, [(null, metrics.Subscribers.Value)]);
        foreach (var counter in metrics.All) FleetMetrics.AppendCounter(sb, counter);
        http.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        await http.Response.WriteAsync(sb.ToString(), http.RequestAborted);
    }
}

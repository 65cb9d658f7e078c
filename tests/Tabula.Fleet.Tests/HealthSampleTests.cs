using System.Data.Common;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Tabula.Fleet.Api;
using Tabula.Fleet.Core;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>
/// The dashboard's time series (issue 18, schema 11): per minute and location, deployed and serving relays, peers and connected
/// peers, served by GET /api/v1/health/samples, pruned after <see cref="FleetLimits.HealthSampleRetention"/>, and holding no
/// customer key, address or DNS name (nor a relay's). A real controller on its own database and clock, SQLite and PostgreSQL.
/// </summary>
public abstract class HealthSampleTests
{
    protected abstract Task<string?> DatabaseAsync();

    [Fact]
    public async Task Samples_sum_serving_relays_and_connected_peers_per_location_are_pruned_and_hold_no_key_or_address()
    {
        string? database = await DatabaseAsync();
        if (database is null) return;
        var clock = new ManualClock();
        await using var host = await FleetHost.StartAsync(database, null, clock);
        var ct = CancellationToken.None;
        var sampler = host.App.Services.GetRequiredService<HealthSampler>();
        string admin = await host.Staff.CreateApiTokenAsync(
            await host.Staff.CreateStaffAsync("test", "alice", FleetFixture.AdminPassword, StaffRole.Admin, ct), "t", ct);
        string viewer = await host.Staff.CreateApiTokenAsync(
            await host.Staff.CreateStaffAsync("test", "vera", FleetFixture.AdminPassword, StaffRole.Viewer, ct), "t", ct);
        string enrollment = await host.Enrollment.CreateEnrollmentTokenAsync("test", "relays", ct);
        using var staff = host.Client(admin);

        // Two serving relays in Gothenburg, one deployed in Frankfurt that never reported, one provisioned in Gothenburg.
        var secrets = new List<string>();
        async Task<TestRelay> RelayAsync(string hostname, string country, string city, string ipv4, bool deploy)
        {
            var relay = new TestRelay();
            await relay.EnrollAsync(host.Client(), enrollment, Http.NewDigest());
            (await staff.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", new ProvisionRequest(hostname, country, country, city,
                city, "31173", true, ipv4, null, 51820, 100, true, "rack"), FleetJson.Default.ProvisionRequest)).EnsureSuccessStatusCode();
            if (deploy)
                (await staff.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/deploy", new ReasonRequest("go"),
                    FleetJson.Default.ReasonRequest)).EnsureSuccessStatusCode();
            secrets.AddRange([hostname, ipv4, Convert.ToBase64String(relay.WireGuardKey), relay.MachineId]);
            return relay;
        }
        var a = await RelayAsync("se-got-wg-001", "se", "got", "185.213.154.1", deploy: true);
        var b = await RelayAsync("se-got-wg-002", "se", "got", "185.213.154.2", deploy: true);
        await RelayAsync("de-fra-wg-001", "de", "fra", "185.213.155.1", deploy: true);
        await RelayAsync("se-got-wg-003", "se", "got", "185.213.154.3", deploy: false);
        // A customer's device: its key and addresses reach the relays, never the samples.
        var account = await host.CreateAccountAsync(admin);
        string customerKey = Http.NewWireGuardKey();
        var added = await host.Client(account.Number, "Token").PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(customerKey),
            FleetJson.Default.AddDeviceRequest);
        added.EnsureSuccessStatusCode();
        var device = await added.Content.ReadFromJsonAsync(FleetJson.Default.DeviceView);
        secrets.AddRange([customerKey, device!.Ipv4Address, device.Ipv6Address]);

        foreach (var (relay, peers, connected) in new[] { (a, 10L, 7L), (b, 5L, 2L) })
            (await host.Client(relay.RelayToken).PostAsJsonAsync("/relay/v1/health", new HealthReport(peers, 1, 100, 200, 0,
                HandshakesLast3Minutes: connected, UptimeSeconds: 60, AgentVersion: "0.1"), FleetJson.Default.HealthReport)).EnsureSuccessStatusCode();
        await sampler.SampleAsync(ct);
        await sampler.SampleAsync(ct);   // the same minute again (or another instance): no second row
        var got = await host.Client(viewer).GetFromJsonAsync("/api/v1/health/samples?hours=1", FleetJson.Default.HealthSamplesView);
        var point = Assert.Single(got!.Points);
        Assert.Equal((3L, 2L, 15L, 9L, 2L), (point.Deployed, point.Serving, point.Peers, point.Connected, point.Locations));
        Assert.Equal(60, got.IntervalSeconds);
        var frankfurt = Assert.Single((await host.Client(viewer).GetFromJsonAsync("/api/v1/health/samples?hours=1&location=de-fra",
            FleetJson.Default.HealthSamplesView))!.Points);
        Assert.Equal((1L, 0L), (frankfurt.Deployed, frankfurt.Serving));

        // Three minutes without a report: deployed still, serving no more. "since" gives only the newer point.
        clock.Advance(TimeSpan.FromMinutes(3));
        await sampler.SampleAsync(ct);
        var newer = await host.Client(viewer).GetFromJsonAsync($"/api/v1/health/samples?since={Uri.EscapeDataString(point.At.ToString("O"))}",
            FleetJson.Default.HealthSamplesView);
        Assert.Equal((3L, 0L), (Assert.Single(newer!.Points).Deployed, newer.Points[0].Serving));

        // Nothing in the table but times, public location codes and counts.
        var (columns, values) = await DumpAsync(database);
        Assert.Equal(["at", "connected", "deployed", "location", "peers", "serving"], columns.Order());
        Assert.All(values.OfType<string>(), v => Assert.Matches("^[a-z]{2}-[a-z]{3}$", v));
        Assert.All(values.Select(v => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture)!),
            v => Assert.DoesNotContain(secrets, s => v.Contains(s, StringComparison.Ordinal)));

        // Past retention, the old samples go with the next sample.
        clock.Advance(FleetLimits.HealthSampleRetention + TimeSpan.FromMinutes(5));
        await sampler.SampleAsync(ct);
        var left = await host.Client(viewer).GetFromJsonAsync("/api/v1/health/samples?hours=48", FleetJson.Default.HealthSamplesView);
        Assert.Single(left!.Points);
        Assert.Equal(2, (await DumpAsync(database)).Values.Count / 6);   // one row per location of the one sample left
        Assert.Equal(400, (int)(await host.Client(viewer).GetAsync("/api/v1/health/samples?hours=49")).StatusCode);
        Assert.Equal(401, (int)(await host.Client().GetAsync("/api/v1/health/samples")).StatusCode);
    }

    private static async Task<(List<string> Columns, List<object> Values)> DumpAsync(string database)
    {
        await using DbConnection connection = database.StartsWith("postgres:", StringComparison.Ordinal)
            ? new Npgsql.NpgsqlConnection(database["postgres:".Length..] + ";Pooling=false")
            : new Microsoft.Data.Sqlite.SqliteConnection("Data Source=" + database["sqlite:".Length..] + ";Pooling=False");
        await connection.OpenAsync();
        await using var select = connection.CreateCommand();
        select.CommandText = "SELECT * FROM health_samples";
        await using var reader = await select.ExecuteReaderAsync();
        var columns = Enumerable.Range(0, reader.FieldCount).Select(reader.GetName).ToList();
        var values = new List<object>();
        while (await reader.ReadAsync())
            for (int i = 0; i < reader.FieldCount; i++) values.Add(reader.GetValue(i));
        return (columns, values);
    }
}

public sealed class SqliteHealthSampleTests : HealthSampleTests, IDisposable
{
    private readonly SqliteDatabases databases = new("samples");

    protected override Task<string?> DatabaseAsync() => databases.NextAsync();

    public void Dispose() => databases.Dispose();
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresHealthSampleTests : HealthSampleTests
{
    protected override Task<string?> DatabaseAsync() => PostgresDatabases.NextAsync();
}

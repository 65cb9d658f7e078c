using System.Net.Http.Json;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>Two controller instances over one PostgreSQL database, as behind a load balancer.</summary>
[Collection(PostgresCollection.Name)]
public sealed class MultiInstanceTests(PostgresFleetFixture fleet) : IClassFixture<PostgresFleetFixture>
{
    [Fact]
    public async Task Device_added_through_one_instance_reaches_a_relay_subscribed_to_the_other()
    {
        if (!fleet.Available) return;
        var a = fleet.Host;
        await using var b = await FleetHost.StartAsync(a.Database);

        var relay = new TestRelay();
        await relay.EnrollAsync(b.Client(), fleet.EnrollmentToken, Http.NewDigest());
        long machinesSeenByA = a.MachineEvents.Version;
        var op = b.Client(fleet.OperatorToken);
        (await op.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", new ProvisionRequest("nl-ams-wg-001", "nl", "Netherlands", "ams",
            "Amsterdam", "m247", false, "198.51.100.7", null, 51820, 100, true, null), FleetJson.Default.ProvisionRequest)).EnsureSuccessStatusCode();
        (await op.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/deploy", new ReasonRequest(null), FleetJson.Default.ReasonRequest)).EnsureSuccessStatusCode();

        // A's dashboard events and relay list learn about B's transitions through NOTIFY.
        await WaitUntil(() => a.MachineEvents.Version > machinesSeenByA);
        var list = await a.Client().GetFromJsonAsync("/app/v1/relays", FleetJson.Default.RelayList);
        Assert.Contains(list!.Wireguard.Relays, r => r.Hostname == "nl-ams-wg-001");

        await using var follower = PeerFollower.Start(a.Client(), relay.RelayToken);
        await follower.WaitForAsync(0);
        var account = await b.CreateAccountAsync(fleet.OperatorToken);
        var customer = b.Client(account.Number, "Token");
        // (Machine events have no polling fallback, so the wait above already proved NOTIFY crosses instances.)
        var device = await (await customer.PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(Http.NewWireGuardKey()), FleetJson.Default.AddDeviceRequest))
            .Content.ReadFromJsonAsync(FleetJson.Default.DeviceView);
        await follower.WaitForAsync(device!.Revision, TimeSpan.FromSeconds(10));
        Assert.Contains(device.PublicKey, follower.Peers.Keys);

        // And writes through both instances interleave into one dense sequence of revisions.
        var customerA = a.Client(account.Number, "Token");
        var both = await Task.WhenAll(Enumerable.Range(0, 4).Select(i =>
            (i % 2 == 0 ? customer : customerA).PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(Http.NewWireGuardKey()), FleetJson.Default.AddDeviceRequest)));
        var revisions = new List<long>();
        foreach (var r in both)
            if (r.IsSuccessStatusCode) revisions.Add((await r.Content.ReadFromJsonAsync(FleetJson.Default.DeviceView))!.Revision);
        Assert.Equal(4, revisions.Count);
        await follower.WaitForAsync(revisions.Max(), TimeSpan.FromSeconds(5));
        Assert.Equal(revisions.Order(), follower.DeltaRevisions.Where(r => r > device.Revision).Order());
    }

    [Fact]
    public async Task A_health_report_to_one_instance_shows_on_the_other_and_a_report_after_failover_replaces_it()
    {
        if (!fleet.Available) return;
        var a = fleet.Host;
        await using var b = await FleetHost.StartAsync(a.Database);
        var relay = new TestRelay();
        await relay.EnrollAsync(b.Client(), fleet.EnrollmentToken, Http.NewDigest());
        var op = a.Client(fleet.OperatorToken);
        (await op.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", new ProvisionRequest("nl-ams-wg-002", "nl", "Netherlands", "ams",
            "Amsterdam", "m247", false, "198.51.100.8", null, 51820, 100, true, null), FleetJson.Default.ProvisionRequest)).EnsureSuccessStatusCode();

        async Task<HealthView?> SeenBy(FleetHost host) =>
            (await host.Client(fleet.ViewerToken).GetFromJsonAsync("/api/v1/health", FleetJson.Default.ListHealthView))!.SingleOrDefault(h => h.MachineId == relay.MachineId);
        async Task ReportTo(FleetHost host, long peers) =>
            (await host.Client(relay.RelayToken).PostAsJsonAsync("/relay/v1/health", new HealthReport(peers, 1, 10, 20, 0), RelayWireJson.Default.HealthReport)).EnsureSuccessStatusCode();

        // Reported to B: A shows it too (NOTIFY), as staff behind a load balancer may ask either.
        await ReportTo(b, 7);
        Assert.Equal(7, (await SeenBy(b))!.Peers);
        for (int i = 0; i < 100 && (await SeenBy(a))?.Peers != 7; i++) await Task.Delay(50);
        Assert.Equal(7, (await SeenBy(a))?.Peers);
        // The relay fails over to A and reports there: B no longer shows the stale report.
        await ReportTo(a, 9);
        for (int i = 0; i < 100 && (await SeenBy(b))?.Peers != 9; i++) await Task.Delay(50);
        Assert.Equal((9L, 9L), ((await SeenBy(a))!.Peers, (await SeenBy(b))!.Peers));
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (int i = 0; i < 100 && !condition(); i++) await Task.Delay(50);
        Assert.True(condition());
    }
}

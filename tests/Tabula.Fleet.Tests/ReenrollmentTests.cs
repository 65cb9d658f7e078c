using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>
/// Issue 17, "re-enrollment": a deployed relay that boots again (a new WireGuard key, a new relay token) returns to
/// service without staff only when its package digest is allowed; staff withdraw a digest (audited) and the machines
/// running it drain, and come back only through staff. Against the real controller on SQLite and PostgreSQL.
/// </summary>
public abstract class ReenrollmentTests(FleetFixture fleet)
{
    private FleetHost Host => fleet.Host;
    private HttpClient Admin => Host.Client(fleet.AdminToken);
    private HttpClient Operator => Host.Client(fleet.OperatorToken);
    private HttpClient Viewer => Host.Client(fleet.ViewerToken);

    private async Task AllowAsync(string digest) =>
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.PostAsJsonAsync("/api/v1/packages/allowed", new AllowPackageRequest(digest, "release"),
            FleetJson.Default.AllowPackageRequest)).StatusCode);

    private async Task<TestRelay> DeployedRelayAsync(string digest)
    {
        var relay = new TestRelay();
        await relay.EnrollAsync(Host.Client(), fleet.EnrollmentToken, digest);
        var placement = new ProvisionRequest("r-" + Guid.NewGuid().ToString("N")[..10], "de", "Germany", "ber", "Berlin", "hetzner", false,
            "192.0.2.10", null, 51820, 100, true, null);
        (await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", placement, FleetJson.Default.ProvisionRequest)).EnsureSuccessStatusCode();
        (await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/deploy", new ReasonRequest(null), FleetJson.Default.ReasonRequest)).EnsureSuccessStatusCode();
        return relay;
    }

    private async Task<string> StateAsync(TestRelay relay) =>
        (await Viewer.GetFromJsonAsync($"/api/v1/machines/{relay.MachineId}", FleetJson.Default.MachineView))!.State;

    private async Task<DeviceView> AddDeviceAsync()
    {
        var account = await Host.CreateAccountAsync(fleet.OperatorToken);   // staff make accounts (anonymous creation needs a voucher)
        var response = await Host.Client(account.Number, "Token").PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(Http.NewWireGuardKey()),
            FleetJson.Default.AddDeviceRequest);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync(FleetJson.Default.DeviceView))!;
    }

    [Fact]
    public async Task Reenrolled_relay_with_an_allowed_digest_serves_with_its_new_key_and_one_not_allowed_gets_no_peers()
    {
        if (!fleet.Available) return;
        string allowed = Http.NewDigest();
        await AllowAsync(allowed);
        var relay = await DeployedRelayAsync(allowed);
        byte[] firstKey = relay.WireGuardKey;

        var reboot = await relay.EnrollAsync(Host.Client(), fleet.EnrollmentToken, allowed);
        Assert.Equal("deployed", reboot.State);
        Assert.NotEqual(firstKey, relay.WireGuardKey);
        // In service without staff: the relay list publishes the new key and the peer stream serves the new token.
        var list = await Host.Client().GetFromJsonAsync("/app/v1/relays", FleetJson.Default.RelayList);
        Assert.Contains(list!.Wireguard.Relays, r => r.PublicKey == Convert.ToBase64String(relay.WireGuardKey) && r.Active);
        var device = await AddDeviceAsync();
        await using (var follower = PeerFollower.Start(Host.Client(), relay.RelayToken))
        {
            await follower.WaitForAsync(device.Revision);
            Assert.Contains(device.PublicKey, follower.Peers.Keys);
        }

        // The same machine booting a package nobody allowed (an attacker's image signed with a stolen identity key, or
        // just an unreviewed release) waits for staff and receives no customer key meanwhile.
        var rogue = await relay.EnrollAsync(Host.Client(), fleet.EnrollmentToken, Http.NewDigest());
        Assert.Equal("awaiting", rogue.State);
        Assert.Equal(HttpStatusCode.Forbidden, (await Host.Client(relay.RelayToken).GetAsync("/relay/v1/peers?from=0")).StatusCode);
        list = await Host.Client().GetFromJsonAsync("/app/v1/relays", FleetJson.Default.RelayList);
        Assert.DoesNotContain(list!.Wireguard.Relays, r => r.PublicKey == Convert.ToBase64String(relay.WireGuardKey));
    }

    [Fact]
    public async Task Withdrawing_a_digest_drains_its_machines_is_audited_and_they_come_back_only_through_staff()
    {
        if (!fleet.Available) return;
        string withdrawn = Http.NewDigest(), kept = Http.NewDigest();
        await AllowAsync(withdrawn);
        await AllowAsync(kept);
        var running = new[] { await DeployedRelayAsync(withdrawn), await DeployedRelayAsync(withdrawn) };
        var other = await DeployedRelayAsync(kept);
        string path = $"/api/v1/packages/allowed/{withdrawn}/withdraw";

        // Only admins withdraw, with a reason, an allowed digest.
        Assert.Equal(HttpStatusCode.Forbidden, (await Operator.PostAsJsonAsync(path, new ReasonRequest("no"), FleetJson.Default.ReasonRequest)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Admin.PostAsJsonAsync(path, new ReasonRequest(" "), FleetJson.Default.ReasonRequest)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Admin.PostAsJsonAsync($"/api/v1/packages/allowed/{Http.NewDigest()}/withdraw",
            new ReasonRequest("typo"), FleetJson.Default.ReasonRequest)).StatusCode);
        Assert.All(running, r => Assert.Equal("deployed", StateAsync(r).Result));

        var response = await Admin.PostAsJsonAsync(path, new ReasonRequest("CVE in the relay image"), FleetJson.Default.ReasonRequest);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var result = (await response.Content.ReadFromJsonAsync(FleetJson.Default.WithdrawnView))!;
        Assert.Equal(running.Select(r => r.MachineId).Order(), result.Drained.Order());
        foreach (var relay in running) Assert.Equal("draining", await StateAsync(relay));
        Assert.Equal("deployed", await StateAsync(other));
        var allowedNow = await Viewer.GetFromJsonAsync("/api/v1/packages/allowed", FleetJson.Default.ListString);
        Assert.DoesNotContain(withdrawn, allowedNow!);
        Assert.Contains(kept, allowedNow!);
        var list = await Host.Client().GetFromJsonAsync("/app/v1/relays", FleetJson.Default.RelayList);
        Assert.All(list!.Wireguard.Relays.Where(r => r.PackageDigest == withdrawn), r => Assert.False(r.Active));

        var audit = (await Admin.GetFromJsonAsync("/api/v1/audit?limit=50", FleetJson.Default.ListAuditView))!;
        Assert.Contains(audit, e => e.Action == "package.withdraw" && e.Target == withdrawn && e.Actor == "alice" && e.Reason == "CVE in the relay image");
        foreach (var relay in running)
            Assert.Contains(audit, e => e.Action == "machine.drain" && e.Target == relay.MachineId && e.Reason == "CVE in the relay image");

        // A drained machine that boots the withdrawn package again waits for staff, with no peers.
        var reboot = await running[0].EnrollAsync(Host.Client(), fleet.EnrollmentToken, withdrawn);
        Assert.Equal("awaiting", reboot.State);
        Assert.Equal(HttpStatusCode.Forbidden, (await Host.Client(running[0].RelayToken).GetAsync("/relay/v1/peers?from=0")).StatusCode);
        // So does a deployed machine whose digest was withdrawn while it was away (a boot after the withdrawal).
        var late = await DeployedRelayAsync(withdrawn);
        Assert.Equal("deployed", await StateAsync(late));   // staff deployed it by hand: their decision
        Assert.Equal("awaiting", (await late.EnrollAsync(Host.Client(), fleet.EnrollmentToken, withdrawn)).State);
        // Staff bring it back explicitly.
        (await Operator.PostAsJsonAsync($"/api/v1/machines/{running[0].MachineId}/deploy", new ReasonRequest("patched in place"),
            FleetJson.Default.ReasonRequest)).EnsureSuccessStatusCode();
        Assert.Equal("deployed", await StateAsync(running[0]));
    }
}

public sealed class SqliteReenrollmentTests(SqliteFleetFixture fleet) : ReenrollmentTests(fleet), IClassFixture<SqliteFleetFixture>
{
    [Fact]
    public async Task Cli_withdraw_drains_and_prints_the_machines()
    {
        string digest = Http.NewDigest();
        (await fleet.Host.Client(fleet.AdminToken).PostAsJsonAsync("/api/v1/packages/allowed", new AllowPackageRequest(digest, "release"),
            FleetJson.Default.AllowPackageRequest)).EnsureSuccessStatusCode();
        var relay = new TestRelay();
        await relay.EnrollAsync(fleet.Host.Client(), fleet.EnrollmentToken, digest);
        var op = fleet.Host.Client(fleet.OperatorToken);
        (await op.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", new ProvisionRequest("cli-" + Guid.NewGuid().ToString("N")[..8], "de",
            "Germany", "ber", "Berlin", "hetzner", false, "192.0.2.10", null, 51820, 100, true, null), FleetJson.Default.ProvisionRequest)).EnsureSuccessStatusCode();
        (await op.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/deploy", new ReasonRequest(null), FleetJson.Default.ReasonRequest)).EnsureSuccessStatusCode();
        var environment = new Dictionary<string, string> { ["TABULA_FLEET_TOKEN"] = fleet.AdminToken };
        string server = fleet.Host.Address.ToString();

        var (exit, _, error) = await TabulaCli.RunAsync(["fleet", "packages", "withdraw", digest, "--server", server], environment: environment);
        Assert.NotEqual(0, exit);   // --reason is required
        (exit, var output, error) = await TabulaCli.RunAsync(["fleet", "packages", "withdraw", digest, "--reason", "bad build", "--json", "--server", server],
            environment: environment);
        Assert.True(exit == 0, error);
        var withdrawn = JsonSerializer.Deserialize(output, FleetJson.Default.WithdrawnView)!;
        Assert.Equal([relay.MachineId], withdrawn.Drained);
        (exit, _, error) = await TabulaCli.RunAsync(["fleet", "packages", "withdraw", digest, "--reason", "again", "--server", server], environment: environment);
        Assert.Equal(1, exit);
        Assert.Contains("not_found", error);
    }
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresReenrollmentTests(PostgresFleetFixture fleet) : ReenrollmentTests(fleet), IClassFixture<PostgresFleetFixture>;

using System.Net;
using System.Net.Http.Json;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>
/// Issue 17, "open streams outlive their authority": a relay that holds a peer stream loses it the moment staff retire
/// the machine or the machine enrolls again (its token rotated), and receives no device added after that. Each attack
/// runs against the real controller (Kestrel, SQLite or PostgreSQL); a second relay that keeps its authority is the
/// witness that the device was sent. On PostgreSQL, staff act through a second controller instance, so the stream's
/// instance learns about the change only through NOTIFY.
/// </summary>
public abstract class RelayAuthorityTests(FleetFixture fleet)
{
    private FleetHost Host => fleet.Host;

    /// <summary>Where staff act: the streaming instance itself, or (PostgreSQL) another instance over the same database.</summary>
    protected virtual Task<FleetHost> StaffInstanceAsync() => Task.FromResult(Host);

    private async Task<TestRelay> DeployedRelayAsync(string? digest = null)
    {
        var relay = new TestRelay();
        await relay.EnrollAsync(Host.Client(), fleet.EnrollmentToken, digest ?? Http.NewDigest());
        var op = Host.Client(fleet.OperatorToken);
        var placement = new ProvisionRequest("r-" + Guid.NewGuid().ToString("N")[..10], "de", "Germany", "ber", "Berlin", "hetzner", false,
            "192.0.2.10", null, 51820, 100, true, null);
        (await op.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", placement, FleetJson.Default.ProvisionRequest)).EnsureSuccessStatusCode();
        (await op.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/deploy", new ReasonRequest(null), FleetJson.Default.ReasonRequest)).EnsureSuccessStatusCode();
        return relay;
    }

    private async Task<HttpClient> AccountAsync()
    {
        var account = await Host.CreateAccountAsync(fleet.OperatorToken);   // staff make accounts (anonymous creation needs a voucher)
        return Host.Client(account.Number, "Token");
    }

    private static async Task<DeviceView> AddAsync(HttpClient account)
    {
        var response = await account.PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(Http.NewWireGuardKey()), FleetJson.Default.AddDeviceRequest);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync(FleetJson.Default.DeviceView))!;
    }

    /// <summary>The stream ends on its own within <paramref name="seconds"/> (the heartbeat interval is 15 s).</summary>
    private static async Task AssertEndsWithin(PeerFollower follower, int seconds)
    {
        var finished = await Task.WhenAny(follower.Run, Task.Delay(TimeSpan.FromSeconds(seconds)));
        Assert.True(finished == follower.Run, $"the stream was still open {seconds} s after the relay lost its authority");
        await follower.Run;   // ended cleanly, not with a broken stream
    }

    [Fact]
    public async Task Retired_relay_holding_a_stream_receives_no_device_added_after_retirement()
    {
        if (!fleet.Available) return;
        var retired = await DeployedRelayAsync();
        var witness = await DeployedRelayAsync();
        var account = await AccountAsync();
        var before = await AddAsync(account);
        await using var attacker = PeerFollower.Start(Host.Client(), retired.RelayToken);
        await using var honest = PeerFollower.Start(Host.Client(), witness.RelayToken);
        await attacker.WaitForAsync(before.Revision);
        await honest.WaitForAsync(before.Revision);
        Assert.Contains(before.PublicKey, attacker.Peers.Keys);

        var staff = await StaffInstanceAsync();
        (await staff.Client(fleet.OperatorToken).PostAsJsonAsync($"/api/v1/machines/{retired.MachineId}/retire", new ReasonRequest("decommissioned"),
            FleetJson.Default.ReasonRequest)).EnsureSuccessStatusCode();
        await AssertEndsWithin(attacker, 5);
        var after = await AddAsync(account);

        await honest.WaitForAsync(after.Revision);
        Assert.Contains(after.PublicKey, honest.Peers.Keys);
        Assert.DoesNotContain(after.PublicKey, attacker.Peers.Keys);
        Assert.True(attacker.Applied < after.Revision);
        // Its retry is refused outright, from any revision.
        Assert.Equal(HttpStatusCode.Forbidden, (await Host.Client(retired.RelayToken).GetAsync($"/relay/v1/peers?from={attacker.Applied}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await Host.Client(retired.RelayToken).GetAsync("/relay/v1/peers?from=0")).StatusCode);
    }

    [Fact]
    public async Task Stream_of_a_relay_whose_token_rotated_by_reenrollment_receives_no_later_device()
    {
        if (!fleet.Available) return;
        // An allowed package: the machine stays deployed across the re-enrollment, so only its token changes.
        string digest = Http.NewDigest();
        (await Host.Client(fleet.AdminToken).PostAsJsonAsync("/api/v1/packages/allowed", new AllowPackageRequest(digest, "release"),
            FleetJson.Default.AllowPackageRequest)).EnsureSuccessStatusCode();
        var relay = await DeployedRelayAsync(digest);
        var account = await AccountAsync();
        var before = await AddAsync(account);
        string oldToken = relay.RelayToken;
        await using var stale = PeerFollower.Start(Host.Client(), oldToken);
        await stale.WaitForAsync(before.Revision);

        var staffInstance = await StaffInstanceAsync();
        var reboot = await relay.EnrollAsync(staffInstance.Client(), fleet.EnrollmentToken, digest);
        Assert.Equal("deployed", reboot.State);
        Assert.NotEqual(oldToken, relay.RelayToken);
        await AssertEndsWithin(stale, 5);
        await using var current = PeerFollower.Start(Host.Client(), relay.RelayToken);
        var after = await AddAsync(account);

        await current.WaitForAsync(after.Revision);
        Assert.Contains(after.PublicKey, current.Peers.Keys);
        Assert.DoesNotContain(after.PublicKey, stale.Peers.Keys);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Host.Client(oldToken).GetAsync($"/relay/v1/peers?from={stale.Applied}")).StatusCode);
    }

    [Fact]
    public async Task Stream_survives_transitions_that_keep_its_authority()
    {
        if (!fleet.Available) return;
        var relay = await DeployedRelayAsync();
        var account = await AccountAsync();
        await using var follower = PeerFollower.Start(Host.Client(), relay.RelayToken);
        await follower.WaitForAsync(0);
        // Draining relays finish their customers' sessions: they keep receiving changes (removals above all).
        (await Host.Client(fleet.OperatorToken).PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/drain", new ReasonRequest("maintenance"),
            FleetJson.Default.ReasonRequest)).EnsureSuccessStatusCode();
        // Another machine's change wakes the stream; it checks and goes on.
        await DeployedRelayAsync();
        var device = await AddAsync(account);
        await follower.WaitForAsync(device.Revision);
        Assert.False(follower.Run.IsCompleted);
        Assert.Equal(1, follower.Snapshots);
    }
}

public sealed class SqliteRelayAuthorityTests(SqliteFleetFixture fleet) : RelayAuthorityTests(fleet), IClassFixture<SqliteFleetFixture>;

[Collection(PostgresCollection.Name)]
public sealed class PostgresRelayAuthorityTests(PostgresFleetFixture fleet) : RelayAuthorityTests(fleet), IClassFixture<PostgresFleetFixture>, IAsyncLifetime
{
    private FleetHost? second;

    protected override async Task<FleetHost> StaffInstanceAsync() => second ??= await FleetHost.StartAsync(fleet.Host.Database);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (second is not null) await second.DisposeAsync();
    }
}

using System.Net;
using System.Net.Http.Json;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>The revisioned peer stream over real HTTP, on SQLite and PostgreSQL.</summary>
public abstract class PeerStreamTests(FleetFixture fleet)
{
    private FleetHost Host => fleet.Host;

    /// <summary>An enrolled, provisioned and deployed relay.</summary>
    private async Task<TestRelay> DeployedRelayAsync()
    {
        var relay = new TestRelay();
        await relay.EnrollAsync(Host.Client(), fleet.EnrollmentToken, Http.NewDigest());
        var op = Host.Client(fleet.OperatorToken);
        var placement = new ProvisionRequest("r-" + Guid.NewGuid().ToString("N")[..10], "de", "Germany", "ber", "Berlin", "hetzner", false,
            "192.0.2.10", null, 51820, 100, true, null);
        (await op.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", placement, FleetJson.Default.ProvisionRequest)).EnsureSuccessStatusCode();
        (await op.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/deploy", new ReasonRequest(null), FleetJson.Default.ReasonRequest)).EnsureSuccessStatusCode();
        return relay;
    }

    private async Task<HttpClient> AccountAsync()
    {
        var account = await Host.CreateAccountAsync(fleet.OperatorToken);
        return Host.Client(account.Number, "Token");
    }

    private static async Task<DeviceView> AddAsync(HttpClient account)
    {
        var response = await account.PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(Http.NewWireGuardKey()), FleetJson.Default.AddDeviceRequest);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync(FleetJson.Default.DeviceView))!;
    }

    private async Task AssertSameSetAsController(PeerFollower follower)
    {
        var (peers, state) = await Host.Store.ReadAsync(async tx =>
        {
            var list = new List<Storage.SnapshotPeer>();
            await foreach (var p in tx.AllPeersAsync(CancellationToken.None)) list.Add(p);
            return (list, await tx.PeerStateAsync(false));
        }, CancellationToken.None);
        Assert.Equal(state.Revision, follower.Applied);
        Assert.Equal(Convert.ToHexStringLower(state.SetHash), follower.Hash);
        Assert.Equal(peers.Select(p => Convert.ToBase64String(p.PublicKey)).Order(), follower.Peers.Keys.Order());
    }

    [Fact]
    public async Task New_relay_gets_a_snapshot_then_ordered_deltas_and_its_set_hash_matches()
    {
        if (!fleet.Available) return;
        var relay = await DeployedRelayAsync();
        var account = await AccountAsync();
        for (int i = 0; i < 3; i++) await AddAsync(account);

        await using var follower = PeerFollower.Start(Host.Client(), relay.RelayToken);
        var added = await AddAsync(account);
        await follower.WaitForAsync(added.Revision);
        Assert.Equal(1, follower.Snapshots);
        Assert.Contains(added.PublicKey, follower.Peers.Keys);
        Assert.Equal((added.Ipv4Address, added.Ipv6Address), follower.Peers[added.PublicKey]);

        var removed = await (await account.DeleteAsync($"/app/v1/devices/{added.Id}")).Content.ReadFromJsonAsync(FleetJson.Default.RevisionResponse);
        await follower.WaitForAsync(removed!.Revision);
        Assert.DoesNotContain(added.PublicKey, follower.Peers.Keys);
        await AssertSameSetAsController(follower);
    }

    [Fact]
    public async Task Relay_resuming_from_its_revision_gets_only_the_later_deltas_without_a_snapshot()
    {
        if (!fleet.Available) return;
        var relay = await DeployedRelayAsync();
        var account = await AccountAsync();
        var first = await AddAsync(account);
        var follower = PeerFollower.Start(Host.Client(), relay.RelayToken);
        await follower.WaitForAsync(first.Revision);
        await follower.StopAsync();
        long resumeAt = follower.Applied;
        int deltasBefore = follower.DeltaRevisions.Count;

        var later = new List<DeviceView> { await AddAsync(account), await AddAsync(account) };
        // The same set object: the relay keeps its peers in RAM across reconnects and resumes from its revision.
        follower.Resume(Host.Client(), relay.RelayToken);
        await using var resumed = follower;
        await resumed.WaitForAsync(later[^1].Revision);
        Assert.Equal(1, resumed.Snapshots);
        Assert.Equal(resumeAt + 1, resumed.DeltaRevisions[deltasBefore]);
        Assert.Contains(later[0].Revision, resumed.DeltaRevisions);
        Assert.Contains(later[1].Revision, resumed.DeltaRevisions);
        await AssertSameSetAsController(resumed);
    }

    [Fact]
    public async Task Relay_claiming_a_revision_the_controller_never_had_gets_a_fresh_snapshot()
    {
        if (!fleet.Available) return;
        var relay = await DeployedRelayAsync();
        await AddAsync(await AccountAsync());
        // E.g. the database was restored from a backup: the relay's set may hold keys the controller forgot.
        await using var follower = PeerFollower.Start(Host.Client(), relay.RelayToken, from: 50_000_000);
        for (int i = 0; i < 200 && follower.Snapshots == 0 && !follower.Run.IsCompleted; i++) await Task.Delay(50);
        Assert.Equal(1, follower.Snapshots);
        await AssertSameSetAsController(follower);
    }

    [Fact]
    public async Task Applied_endpoint_counts_deployed_relays_that_reported_a_revision()
    {
        if (!fleet.Available) return;
        var relay = await DeployedRelayAsync();
        var device = await AddAsync(await AccountAsync());
        var viewer = Host.Client(fleet.ViewerToken);
        var before = await viewer.GetFromJsonAsync($"/api/v1/revisions/{device.Revision}/applied", FleetJson.Default.AppliedView);
        Assert.True(before!.Deployed >= 1);

        var agent = Host.Client(relay.RelayToken);
        Assert.Equal(HttpStatusCode.NoContent, (await agent.PostAsJsonAsync("/relay/v1/applied", new AppliedRequest(device.Revision), FleetJson.Default.AppliedRequest)).StatusCode);
        var after = await viewer.GetFromJsonAsync($"/api/v1/revisions/{device.Revision}/applied", FleetJson.Default.AppliedView);
        Assert.Equal(before.Applied + 1, after!.Applied);
        Assert.True(after.Head >= device.Revision);
        var bad = await agent.PostAsJsonAsync("/relay/v1/applied", new AppliedRequest(after.Head + 1000), FleetJson.Default.AppliedRequest);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }

    [Fact]
    public async Task Awaiting_machine_and_strangers_are_refused_the_peer_stream()
    {
        if (!fleet.Available) return;
        var relay = new TestRelay();
        await relay.EnrollAsync(Host.Client(), fleet.EnrollmentToken, Http.NewDigest());
        Assert.Equal(HttpStatusCode.Forbidden, (await Host.Client(relay.RelayToken).GetAsync("/relay/v1/peers?from=0")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Host.Client("tfr_nope").GetAsync("/relay/v1/peers?from=0")).StatusCode);
    }

    [Fact]
    public async Task Peer_stream_runs_over_cleartext_http2()
    {
        if (!fleet.Available) return;
        var relay = await DeployedRelayAsync();
        using var client = Host.Client(relay.RelayToken, http2: true);
        using var response = await client.GetAsync("/relay/v1/peers?from=0", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType!.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Assert.Contains("\"type\":\"snapshot\"", await reader.ReadLineAsync());
    }
}

public sealed class SqlitePeerStreamTests(SqliteFleetFixture fleet) : PeerStreamTests(fleet), IClassFixture<SqliteFleetFixture>;

[Collection(PostgresCollection.Name)]
public sealed class PostgresPeerStreamTests(PostgresFleetFixture fleet) : PeerStreamTests(fleet), IClassFixture<PostgresFleetFixture>;

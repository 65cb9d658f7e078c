using System.Net.Http.Json;
using Microsoft.Data.Sqlite;
using Tabula.Fleet.Api;
using Tabula.Fleet.Protocol;
using Tabula.Machine.Reporting;
using Tabula.Relay.Sync;
using Tabula.WireGuard.Keys;
using Tabula.WireGuard.Uapi;

namespace Tabula.Relay.Tests;

/// <summary>
/// Issue 17, "Peer-limit wipe loop" and "Peer addresses outside the pool", run against the real controller and a real
/// wireguard-go device. wireguard-go's own limit is 2^16 peers and the kernel's 2^20, far too many for a test, so the agent
/// counts and enforces its peer limit itself (<see cref="RelayAgentOptions.PeerLimit"/>, 5 here): the device never
/// reaches a refusal of its own in these tests.
/// </summary>
public sealed partial class RelayAgentTests
{
    static async Task<string[]> DevicePeersAsync(Rig rig)
    {
        using var state = await new UapiWireGuardControl(rig.RelayWg.InterfaceName).GetAsync();
        return [.. state.Peers.Select(p => p.PublicKey.ToBase64()).Order(StringComparer.Ordinal)];
    }

    static string[] Keys(params DeviceView[] devices) => [.. devices.Select(d => d.PublicKey).Order(StringComparer.Ordinal)];

    static async Task<HealthView?> HealthAsync(Rig rig, string machineId)
    {
        using var staff = rig.Fleet.Client(rig.Fleet.AdminToken);
        return (await staff.GetFromJsonAsync("/api/v1/health", FleetJson.Default.ListHealthView))!.SingleOrDefault(h => h.MachineId == machineId);
    }

    static async Task<long> RemoveDeviceAsync(Rig rig, string account, DeviceView device)
    {
        using var customer = rig.Fleet.Client(account, "Token");
        using var removed = await customer.DeleteAsync($"/app/v1/devices/{device.Id}");
        Assert.True(removed.IsSuccessStatusCode, $"DELETE {(int)removed.StatusCode}");
        long revision = (await removed.Content.ReadFromJsonAsync(FleetJson.Default.RevisionResponse))!.Revision;
        await Until(() => rig.Agent.Sync.AppliedRevision >= revision, "the removal to be applied");
        return revision;
    }

    [PrivilegedFact("wireguard-go", "ip", "ping", "wg")]
    public async Task Past_its_peer_limit_a_relay_serves_the_first_peers_removes_none_reports_partial_and_fills_up_as_removals_free_room()
    {
        await using var rig = await StartAsync(peerLimit: 5);
        var devices = new List<(DeviceView Device, string Account, WireGuardKey Key)>();
        for (int i = 0; i < 7; i++) devices.Add(await AddCustomerDeviceAsync(rig));
        try
        {
            DeviceView D(int i) => devices[i].Device;
            string machineId = await DeployAsync(rig);
            await Until(() => rig.Agent.Sync.AppliedRevision >= D(6).Revision, "the snapshot of 7 peers");

            // The snapshot (device id order) holds 7; the device the first 5; 2 wait. Reported to the console and the controller.
            Assert.Equal(Keys(D(0), D(1), D(2), D(3), D(4)), await DevicePeersAsync(rig));
            Assert.Equal(new PeerSyncStatus(7, 5, 2, 0, "peer_limit"), rig.Agent.Sync.Status);
            Assert.Contains(rig.Log.Recent(), l => ConsoleMarker.Relay("sync").Matches(l)
                && l.EndsWith(" partial wanted=7 applied=5 pending=2 outside_pool=0 peer_limit=5 reason=peer_limit", StringComparison.Ordinal));
            await Until(async () => await HealthAsync(rig, machineId) is { PartialApply: true, PartialReason: "peer_limit", PeersWanted: 7, PeersApplied: 5, PeersPending: 2, Peers: 5 },
                "a health report of the partial apply", 30);

            // It keeps serving what it holds: a customer among the first five handshakes and pings.
            await ConfigureClientAsync(rig, devices[0].Key, D(0));
            await Until(() => Ping(rig), "a ping through the tunnel", 30);

            // A delta past the limit waits too.
            devices.Add(await AddCustomerDeviceAsync(rig));
            await Until(() => rig.Agent.Sync.AppliedRevision >= D(7).Revision, "the eighth add");
            Assert.Equal(new PeerSyncStatus(8, 5, 3, 0, "peer_limit"), rig.Agent.Sync.Status);
            Assert.Equal(Keys(D(0), D(1), D(2), D(3), D(4)), await DevicePeersAsync(rig));

            // A removal frees room: the longest waiting (the sixth) goes in.
            await RemoveDeviceAsync(rig, devices[1].Account, D(1));
            Assert.Equal(Keys(D(0), D(2), D(3), D(4), D(5)), await DevicePeersAsync(rig));
            // Removing a waiting one (the seventh) changes nothing on the device.
            await RemoveDeviceAsync(rig, devices[6].Account, D(6));
            Assert.Equal(Keys(D(0), D(2), D(3), D(4), D(5)), await DevicePeersAsync(rig));
            Assert.Equal(new PeerSyncStatus(6, 5, 1, 0, "peer_limit"), rig.Agent.Sync.Status);

            // The attack on the old agent: a resubscription from 0, whose first snapshot batch replaced every peer (so a relay
            // whose snapshot failed dropped every customer at each retry). Now the snapshot is a diff: nothing served is
            // removed, not even for a moment (a watcher reads the device throughout), and the customer's session survives.
            Assert.StartsWith($"{D(0).PublicKey}\t10.203.0.2:", Wg(rig, "endpoints").Split('\n').Single(l => l.StartsWith(D(0).PublicKey, StringComparison.Ordinal)));
            int subscriptions = rig.Agent.Sync.Subscriptions;
            using var watching = new CancellationTokenSource();
            var watcher = Task.Run(async () =>
            {
                int fewest = int.MaxValue;
                var control = new UapiWireGuardControl(rig.RelayWg.InterfaceName);
                while (!watching.IsCancellationRequested)
                {
                    using (var state = await control.GetAsync())
                        fewest = Math.Min(fewest, state.Peers.Count);
                    await Task.Delay(2);
                }
                return fewest;
            });
            rig.Agent.Sync.DeviceInDoubt();   // the next line makes the agent resubscribe from 0
            devices.Add(await AddCustomerDeviceAsync(rig));
            await Until(() => rig.Agent.Sync.Subscriptions > subscriptions && rig.Agent.Sync.AppliedRevision >= D(8).Revision, "a resubscription from 0");
            await Task.Delay(200);
            await watching.CancelAsync();
            Assert.Equal(5, await watcher);
            Assert.Equal(2, rig.Log.Recent().Count(l => ConsoleMarker.Relay("sync").Matches(l) && l.Contains(" snapshot revision=", StringComparison.Ordinal)));
            Assert.Equal(Keys(D(0), D(2), D(3), D(4), D(5)), await DevicePeersAsync(rig));
            Assert.Equal(new PeerSyncStatus(7, 5, 2, 0, "peer_limit"), rig.Agent.Sync.Status);
            Assert.StartsWith($"{D(0).PublicKey}\t10.203.0.2:", Wg(rig, "endpoints").Split('\n').Single(l => l.StartsWith(D(0).PublicKey, StringComparison.Ordinal)));
            Assert.True(Ping(rig));

            // More removals free more room, in the set's order (the eighth, then the ninth); whole again, not partial.
            await RemoveDeviceAsync(rig, devices[2].Account, D(2));
            await RemoveDeviceAsync(rig, devices[3].Account, D(3));
            Assert.Equal(Keys(D(0), D(4), D(5), D(7), D(8)), await DevicePeersAsync(rig));
            Assert.Equal(new PeerSyncStatus(5, 5, 0, 0, null), rig.Agent.Sync.Status);
            await Until(async () => await HealthAsync(rig, machineId) is { PartialApply: false, PartialReason: null, PeersWanted: 5, PeersApplied: 5 },
                "a health report of the whole set", 30);

            string printed = rig.Console.ToString() + string.Join('\n', rig.Log.Recent());
            foreach (var (device, _, _) in devices)
                Assert.DoesNotContain(device.PublicKey, printed);
        }
        finally
        {
            foreach (var (_, _, key) in devices) key.Dispose();
        }
    }

    /// <summary>
    /// The attack: the controller's database (tampered, or a compromised controller) names tunnel addresses outside the
    /// relay's pools: another network the relay routes to (192.168.77.0/24 here) and the relay's own gateway address. Such
    /// a peer would take those routes into its tunnel. The relay never installs it, counts it in its health, and removes
    /// the peer it had for that key.
    /// </summary>
    [PrivilegedFact("wireguard-go", "ip", "wg")]
    public async Task A_relay_refuses_peers_whose_tunnel_addresses_lie_outside_its_pools_and_reports_them()
    {
        await using var rig = await StartAsync();
        string machineId = await DeployAsync(rig);
        var devices = new List<(DeviceView Device, string Account, WireGuardKey Key)>();
        try
        {
            for (int i = 0; i < 3; i++) devices.Add(await AddCustomerDeviceAsync(rig));
            DeviceView D(int i) => devices[i].Device;
            await Until(() => rig.Agent.Sync.AppliedRevision >= D(2).Revision, "three adds");
            Assert.Equal(Keys(D(0), D(1), D(2)), await DevicePeersAsync(rig));

            using (var db = new SqliteConnection($"Data Source={rig.Fleet.DatabaseFile};Pooling=False"))
            {
                db.Open();
                using (var tx = db.BeginTransaction())
                {
                    void Set(DeviceView device, string column, string address)
                    {
                        using var update = db.CreateCommand();
                        update.CommandText = $"UPDATE devices SET {column} = @a WHERE public_key = @k";
                        update.Parameters.AddWithValue("@a", address);
                        update.Parameters.AddWithValue("@k", Convert.FromBase64String(device.PublicKey));
                        Assert.Equal(1, update.ExecuteNonQuery());
                    }
                    Set(D(0), "ipv4", "192.168.77.9");   // a network the relay may route to (RFC 1918)
                    Set(D(1), "ipv6", "fc00:bbbb:bbbb:bb01::1");                                 // the relay's own IPv6 gateway
                    // The stream must still hash right: the tampered set's hash, as a controller holding these rows computes it.
                    byte[] hash = PeerSetHash.Empty;
                    using (var read = db.CreateCommand())
                    {
                        read.CommandText = "SELECT public_key, ipv4, ipv6 FROM devices";
                        using var rows = read.ExecuteReader();
                        while (rows.Read()) PeerSetHash.Toggle(hash, (byte[])rows.GetValue(0), rows.GetString(1), rows.GetString(2));
                    }
                    using var save = db.CreateCommand();
                    save.CommandText = "UPDATE fleet_state SET set_hash = @h WHERE id = 1";
                    save.Parameters.AddWithValue("@h", hash);
                    save.ExecuteNonQuery();
                    tx.Commit();
                }
            }

            int subscriptions = rig.Agent.Sync.Subscriptions;
            rig.Agent.Sync.DeviceInDoubt();   // resubscribe from 0 at the next line: the snapshot carries the tampered rows
            devices.Add(await AddCustomerDeviceAsync(rig));
            await Until(() => rig.Agent.Sync.Subscriptions > subscriptions && rig.Agent.Sync.AppliedRevision >= D(3).Revision, "a snapshot of the tampered set");

            Assert.Equal(Keys(D(2), D(3)), await DevicePeersAsync(rig));
            string allowed = Wg(rig, "allowed-ips");
            Assert.DoesNotContain("192.168.77.", allowed);
            Assert.DoesNotContain("fc00:bbbb:bbbb:bb01::1/128", allowed);
            Assert.Equal(new PeerSyncStatus(4, 2, 0, 2, "outside_pool"), rig.Agent.Sync.Status);
            await Until(async () => await HealthAsync(rig, machineId) is { PartialApply: true, PartialReason: "outside_pool", PeersOutsidePool: 2, PeersApplied: 2 },
                "a health report counting the refused peers", 30);
            using (var anonymous = rig.Fleet.Client())
                Assert.Contains("tabula_fleet_relay_peers_outside_pool{relay=\"se-got-wg-001\"} 2", await anonymous.GetStringAsync("/metrics"));

            // Their removal touches nothing on the device and takes them off the count.
            await RemoveDeviceAsync(rig, devices[0].Account, D(0));
            await RemoveDeviceAsync(rig, devices[1].Account, D(1));
            Assert.Equal(Keys(D(2), D(3)), await DevicePeersAsync(rig));
            Assert.Equal(new PeerSyncStatus(2, 2, 0, 0, null), rig.Agent.Sync.Status);
        }
        finally
        {
            foreach (var (_, _, key) in devices) key.Dispose();
        }
    }
}

using System.Data.Common;
using System.Net;
using System.Net.Http.Json;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>
/// Issue 17, "deleted devices leave no key behind": once every relay has applied a device's removal, the change log
/// keeps the removal by device id, and no table (nor, on SQLite, the database file) holds the deleted key. The attack is
/// reading the database of a real controller (Kestrel; SQLite, PostgreSQL) after two relays applied the removal. One
/// test per class: the scrub point is the slowest relay of the database, and the fixture's database is the class's.
/// </summary>
public abstract class DeletedKeyTests(FleetFixture fleet)
{
    private FleetHost Host => fleet.Host;

    private async Task<TestRelay> DeployedRelayAsync()
    {
        var relay = new TestRelay();
        await relay.EnrollAsync(Host.Client(), fleet.EnrollmentToken, Http.NewDigest());
        var op = Host.Client(fleet.OperatorToken);
        (await op.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", new ProvisionRequest("r-" + Guid.NewGuid().ToString("N")[..10], "de",
            "Germany", "ber", "Berlin", "hetzner", false, "192.0.2.10", null, 51820, 100, true, null), FleetJson.Default.ProvisionRequest)).EnsureSuccessStatusCode();
        (await op.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/deploy", new ReasonRequest(null), FleetJson.Default.ReasonRequest)).EnsureSuccessStatusCode();
        return relay;
    }

    private async Task AppliedAsync(TestRelay relay, long revision) =>
        Assert.Equal(HttpStatusCode.NoContent, (await Host.Client(relay.RelayToken).PostAsJsonAsync("/relay/v1/applied", new AppliedRequest(revision),
            FleetJson.Default.AppliedRequest)).StatusCode);

    private DbConnection Open()
    {
        string database = Host.Database;
        return database.StartsWith("postgres:", StringComparison.Ordinal)
            ? new Npgsql.NpgsqlConnection(database["postgres:".Length..])
            : new Microsoft.Data.Sqlite.SqliteConnection("Data Source=" + database["sqlite:".Length..]);
    }

    /// <summary>Every peer log row as the database holds it: (revision, kind, key, device id).</summary>
    private async Task<List<(long Revision, long Kind, byte[] Key, long? DeviceId)>> LogAsync()
    {
        await using var connection = Open();
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT revision, kind, public_key, device_id FROM peer_changes ORDER BY revision";
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<(long, long, byte[], long?)>();
        while (await reader.ReadAsync())
            rows.Add((Convert.ToInt64(reader.GetValue(0)), Convert.ToInt64(reader.GetValue(1)), (byte[])reader.GetValue(2),
                reader.IsDBNull(3) ? null : Convert.ToInt64(reader.GetValue(3))));
        return rows;
    }

    private async Task<long> CountKeyAsync(string table, byte[] key)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        await connection.OpenAsync();
        command.CommandText = $"SELECT COUNT(*) FROM {table} WHERE public_key = @k";
        var p = command.CreateParameter();
        p.ParameterName = "k";
        p.Value = key;
        command.Parameters.Add(p);
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }

    private static bool Holds(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle) >= 0;

    [Fact]
    public async Task After_every_relay_applied_a_removal_the_database_keeps_it_by_device_id_and_holds_no_deleted_key()
    {
        if (!fleet.Available) return;
        var first = await DeployedRelayAsync();
        var second = await DeployedRelayAsync();
        var account = await Host.CreateAccountAsync(fleet.OperatorToken);   // staff make accounts (anonymous creation needs a voucher)
        var customer = Host.Client(account.Number, "Token");
        var devices = new List<DeviceView>();
        for (int i = 0; i < 3; i++)
            devices.Add((await (await customer.PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(Http.NewWireGuardKey()),
                FleetJson.Default.AddDeviceRequest)).Content.ReadFromJsonAsync(FleetJson.Default.DeviceView))!);
        var (deleted, kept) = (devices[0], devices[1]);
        byte[] deletedKey = Convert.FromBase64String(deleted.PublicKey), keptKey = Convert.FromBase64String(kept.PublicKey);
        long removedAt = (await (await customer.DeleteAsync($"/app/v1/devices/{deleted.Id}")).Content.ReadFromJsonAsync(FleetJson.Default.RevisionResponse))!.Revision;
        long head = removedAt;

        await using (var a = PeerFollower.Start(Host.Client(), first.RelayToken))
        await using (var b = PeerFollower.Start(Host.Client(), second.RelayToken))
        {
            await a.WaitForAsync(head);
            await b.WaitForAsync(head);
            Assert.DoesNotContain(deleted.PublicKey, a.Peers.Keys);
        }

        // One relay applied it: the other may still resume from before the removal, so the log still has the key.
        await AppliedAsync(first, head);
        Assert.Equal(2, (await LogAsync()).Count(r => r.Key.AsSpan().SequenceEqual(deletedKey)));

        await AppliedAsync(second, head);
        var log = await LogAsync();
        Assert.DoesNotContain(log, r => r.Key.AsSpan().SequenceEqual(deletedKey));
        Assert.Equal(0, await CountKeyAsync("devices", deletedKey));
        var removal = Assert.Single(log, r => r.Revision == removedAt);
        Assert.Equal(2, removal.Kind);
        Assert.Equal(deleted.Id, removal.DeviceId);
        Assert.Empty(removal.Key);
        Assert.Equal(deleted.Id, Assert.Single(log, r => r.Revision == deleted.Revision).DeviceId);
        // A device that still exists keeps its entry.
        Assert.Contains(log, r => r.Revision == kept.Revision && r.Key.AsSpan().SequenceEqual(keptKey));

        if (Host.Database.StartsWith("sqlite:", StringComparison.Ordinal))
        {
            // Nor in the file: freed cells are overwritten (secure_delete) once the WAL is checkpointed into it.
            string path = Host.Database["sqlite:".Length..];
            await using (var connection = Open())
            {
                await connection.OpenAsync();
                await using var checkpoint = connection.CreateCommand();
                checkpoint.CommandText = "PRAGMA wal_checkpoint(TRUNCATE)";
                await checkpoint.ExecuteNonQueryAsync();
            }
            byte[] file = await File.ReadAllBytesAsync(path);
            Assert.True(Holds(file, keptKey), "the reader is wrong: a live key must be in the file");
            Assert.False(Holds(file, deletedKey), "the deleted key is still in the database file");
            if (File.Exists(path + "-wal")) Assert.False(Holds(await File.ReadAllBytesAsync(path + "-wal"), deletedKey));
        }

        // The stream never serves a scrubbed entry: a relay resuming from before the removal gets a snapshot.
        await using var resumed = PeerFollower.Start(Host.Client(), first.RelayToken, from: removedAt - 1);
        await resumed.WaitForAsync(head);
        Assert.Equal(1, resumed.Snapshots);
        Assert.Contains(kept.PublicKey, resumed.Peers.Keys);
        Assert.DoesNotContain(deleted.PublicKey, resumed.Peers.Keys);
    }
}

public sealed class SqliteDeletedKeyTests(SqliteFleetFixture fleet) : DeletedKeyTests(fleet), IClassFixture<SqliteFleetFixture>;

[Collection(PostgresCollection.Name)]
public sealed class PostgresDeletedKeyTests(PostgresFleetFixture fleet) : DeletedKeyTests(fleet), IClassFixture<PostgresFleetFixture>;

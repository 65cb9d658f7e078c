using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Data.Sqlite;
using Tabula.Fleet.Core;
using Tabula.Fleet.Protocol;
using Tabula.Fleet.Security;

/// <summary>A fleet database as the controller would leave it after many adds (shared by the fleet and relay benchmarks).</summary>
static class FleetSeed
{
    // Writes rows the way the controller would have after DEVICES adds and a log compaction (accounts by the HMAC of their
    // number under the database's secrets key); returns relay tokens.
    public static string[] Seed(string db, SecretsKey secrets, int devices, int relays, string benchAccount)
    {
        using var connection = new SqliteConnection($"Data Source={db}");
        connection.Open();
        return Seed(connection, secrets, devices, relays, benchAccount);
    }

    /// <summary>The same rows through any open connection (SQLite, or PostgreSQL for the two-instance mode): portable SQL.</summary>
    public static string[] Seed(DbConnection connection, SecretsKey secrets, int devices, int relays, string benchAccount)
    {
        using var tx = connection.BeginTransaction();
        DbCommand Command(string sql)
        {
            var c = connection.CreateCommand();
            c.Transaction = tx;
            c.CommandText = sql.Replace('$', '@');
            return c;
        }
        static DbParameter Add(DbCommand c, string name, object? value = null)
        {
            var p = c.CreateParameter();
            p.ParameterName = name.Replace('$', '@');
            p.Value = value;
            c.Parameters.Add(p);
            return p;
        }
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        using (var account = Command("INSERT INTO accounts (id, number_hmac, created_at, device_limit) VALUES ($id, $n, $now, $l)"))
        {
            var id = Add(account, "$id");
            var number = Add(account, "$n");
            Add(account, "$now", now);
            var limit = Add(account, "$l");
            int accounts = (devices + 4) / 5;
            for (int a = 1; a <= accounts; a++)
            {
                id.Value = a; number.Value = secrets.AccountNumberHmac((1_000_000_000_000_000L + a).ToString(CultureInfo.InvariantCulture)); limit.Value = 5;
                account.ExecuteNonQuery();
            }
            id.Value = accounts + 1; number.Value = secrets.AccountNumberHmac(benchAccount); limit.Value = 1_000_000;
            account.ExecuteNonQuery();
        }
        var pool = AddressPool.Default;
        byte[] hash = PeerSetHash.Empty;
        using (var device = Command("INSERT INTO devices (account_id, public_key, ipv4, ipv6, created_at, revision) VALUES ($a, $k, $v4, $v6, $now, $r)"))
        {
            var account = Add(device, "$a");
            var key = Add(device, "$k");
            var v4 = Add(device, "$v4");
            var v6 = Add(device, "$v6");
            Add(device, "$now", now);
            var revision = Add(device, "$r");
            for (int d = 0; d < devices; d++)
            {
                byte[] k = RandomNumberGenerator.GetBytes(32);
                var (ipv4, ipv6) = pool.Allocate(d);
                PeerSetHash.Toggle(hash, k, ipv4, ipv6);
                account.Value = d / 5 + 1; key.Value = k; v4.Value = ipv4; v6.Value = ipv6; revision.Value = d + 1;
                device.ExecuteNonQuery();
            }
        }
        using (var state = Command("UPDATE fleet_state SET revision = $r, set_hash = $h, next_address = $n WHERE id = 1"))
        {
            Add(state, "$r", (long)devices);
            Add(state, "$h", hash);
            Add(state, "$n", (long)devices);
            state.ExecuteNonQuery();
        }
        var tokens = new string[relays];
        using (var machine = Command(
            "INSERT INTO machines (id, identity_key, state, wg_key, package_digest, placement, hostname, relay_token_hash, applied_revision, enrolled_at, updated_at) " +
            "VALUES ($id, $ik, 'deployed', $wg, $d, NULL, $h, $t, 0, $now, $now)"))
        {
            var id = Add(machine, "$id");
            var ik = Add(machine, "$ik");
            var wg = Add(machine, "$wg");
            Add(machine, "$d", new string('a', 64));
            var host = Add(machine, "$h");
            var token = Add(machine, "$t");
            Add(machine, "$now", now);
            for (int r = 0; r < relays; r++)
            {
                byte[] identity = RandomNumberGenerator.GetBytes(32);
                tokens[r] = Secrets.NewToken("tfr");
                id.Value = Enrollment.MachineId(identity); ik.Value = identity; wg.Value = RandomNumberGenerator.GetBytes(32);
                host.Value = $"bench-{r}"; token.Value = Secrets.HashToken(tokens[r]);
                machine.ExecuteNonQuery();
            }
        }
        tx.Commit();
        return tokens;
    }
}

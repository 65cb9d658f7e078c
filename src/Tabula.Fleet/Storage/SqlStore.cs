using System.Data.Common;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Tabula.Fleet.Protocol;
using Tabula.Fleet.Security;

namespace Tabula.Fleet.Storage;

/// <summary>
/// The one ADO.NET implementation of <see cref="IStore"/>: portable SQL (parameters as @name, RETURNING,
/// ON CONFLICT) over a <see cref="SqlDialect"/>. Times are Unix milliseconds, booleans 0/1, keys raw bytes.
/// At rest (issue 17) the store keeps no account number and no TOTP secret in the clear: accounts are rows keyed by the
/// HMAC of their number, TOTP secrets are sealed, both under <paramref name="secrets"/> (which the caller owns and disposes
/// after the store).
/// </summary>
public sealed partial class SqlStore(SqlDialect dialect, SecretsKey secrets, TimeProvider time) : IStore
{
    private readonly SqlDialect dialect = dialect;
    private readonly SecretsKey secrets = secrets;
    private readonly TimeProvider time = time;

    public string Kind => dialect.Kind;

    public static SqlStore Open(string database, SecretsKey secrets, TimeProvider? time = null)
    {
        SqlDialect dialect = database.StartsWith("postgres:", StringComparison.Ordinal)
            ? new Postgres.PostgresDialect(database["postgres:".Length..])
            : new Sqlite.SqliteDialect(database.StartsWith("sqlite:", StringComparison.Ordinal) ? database["sqlite:".Length..] : database);
        return new SqlStore(dialect, secrets, time ?? TimeProvider.System);
    }

    /// <summary>
    /// Creates or upgrades the schema, then checks that <see cref="secrets"/> is this database's key (the first start records
    /// its check value); another key is an <see cref="ArgumentException"/>: an instance with the wrong key would know no
    /// account and open no TOTP secret.
    /// </summary>
    public async Task MigrateAsync(CancellationToken ct)
    {
        dialect.PrepareFiles();
        bool sealedNow = false;
        await using (var connection = await dialect.OpenAsync(ct))
        {
            var (tx, lease) = await dialect.BeginWriteAsync(connection, ct);
            using (lease)
            await using (tx)
            {
                await dialect.LockForMigrationAsync(connection, tx, ct);
                await Exec(connection, tx, "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)");
                long version = await Scalar(connection, tx, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
                for (long v = version; v < dialect.Migrations.Count; v++)
                {
                    await Exec(connection, tx, dialect.Migrations[(int)v]);
                    await Exec(connection, tx, "INSERT INTO schema_version (version) VALUES (@v)", ("v", v + 1));
                    if (v + 1 == AtRestVersion) sealedNow = await SealAtRestAsync(connection, tx, ct) > 0;
                }
                if (version < PeerHashV2 && dialect.Migrations.Count >= PeerHashV2)
                    await RehashPeerSetAsync(connection, tx, ct);
                await CheckSecretsKeyAsync(connection, tx, ct);
                await tx.CommitAsync(ct);
            }
        }
        // The plaintext the upgrade replaced must not linger in the database's files (SQLite: the WAL; PostgreSQL: dead tuples).
        if (sealedNow) await dialect.CompactAfterRewriteAsync(["accounts", "staff"], ct);
    }

    /// <summary>The schema version whose accounts hold the HMAC of their number and whose TOTP secrets are sealed.</summary>
    internal const int AtRestVersion = 9;

    /// <summary>
    /// Upgrade to <see cref="AtRestVersion"/>, in the migration's transaction: every account's number (the column the migration
    /// renamed to number_hmac) becomes its HMAC, every TOTP secret (current and pending) is sealed. Returns the rows rewritten.
    /// </summary>
    private async Task<int> SealAtRestAsync(DbConnection c, DbTransaction tx, CancellationToken ct)
    {
        var accounts = new List<(long Id, string Number)>();
        await using (var command = Command(c, tx, "SELECT id, number_hmac FROM accounts"))
        await using (var reader = await command.ExecuteReaderAsync(ct))
            while (await reader.ReadAsync(ct))
                accounts.Add((Convert.ToInt64(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture), reader.GetString(1)));
        foreach (var (id, number) in accounts)
            await Exec(c, tx, "UPDATE accounts SET number_hmac = @h WHERE id = @id", ("h", secrets.AccountNumberHmac(number)), ("id", id));

        var staff = new List<(long Id, byte[]? Secret, byte[]? Pending)>();
        await using (var command = Command(c, tx, "SELECT id, totp_secret, totp_pending FROM staff WHERE totp_secret IS NOT NULL OR totp_pending IS NOT NULL"))
        await using (var reader = await command.ExecuteReaderAsync(ct))
            while (await reader.ReadAsync(ct))
                staff.Add((Convert.ToInt64(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture),
                    reader.IsDBNull(1) ? null : (byte[])reader.GetValue(1), reader.IsDBNull(2) ? null : (byte[])reader.GetValue(2)));
        foreach (var (id, secret, pending) in staff)
        {
            await Exec(c, tx, "UPDATE staff SET totp_secret = @s, totp_pending = @p WHERE id = @id",
                ("s", secret is null ? null : secrets.SealTotp(id, TotpSecretColumn, secret)),
                ("p", pending is null ? null : secrets.SealTotp(id, TotpPendingColumn, pending)), ("id", id));
            if (secret is not null) System.Security.Cryptography.CryptographicOperations.ZeroMemory(secret);
            if (pending is not null) System.Security.Cryptography.CryptographicOperations.ZeroMemory(pending);
        }
        return accounts.Count + staff.Count;
    }

    internal const string TotpSecretColumn = "totp_secret", TotpPendingColumn = "totp_pending";

    /// <summary>The fleet_settings row that holds <see cref="SecretsKey.Check"/>.</summary>
    internal const string SecretsKeySetting = "secrets_key_check";

    private async Task CheckSecretsKeyAsync(DbConnection c, DbTransaction tx, CancellationToken ct)
    {
        await Exec(c, tx, "INSERT INTO fleet_settings (name, value) VALUES (@n, @v) ON CONFLICT (name) DO NOTHING",
            ("n", SecretsKeySetting), ("v", secrets.Check));
        string? recorded = null;
        await using (var command = Command(c, tx, "SELECT value FROM fleet_settings WHERE name = @n", ("n", SecretsKeySetting)))
            recorded = await command.ExecuteScalarAsync(ct) as string;
        if (recorded != secrets.Check)
            throw new ArgumentException($"the secrets key {secrets.Path} is not this database's (it was set up with another key, check " +
                                        $"{recorded?[..8]}…, this file's is {secrets.Check[..8]}…): give every instance the key file the " +
                                        "database was created with; without it no account number and no TOTP secret can be checked");
    }

    /// <summary>The schema version whose peer-set hash is over address bytes.</summary>
    private const int PeerHashV2 = 2;

    /// <summary>Recomputes the set hash of every device with the current <see cref="PeerSetHash"/>.</summary>
    private static async Task RehashPeerSetAsync(DbConnection c, DbTransaction tx, CancellationToken ct)
    {
        byte[] hash = PeerSetHash.Empty;
        await using (var command = Command(c, tx, "SELECT public_key, ipv4, ipv6 FROM devices"))
        await using (var reader = await command.ExecuteReaderAsync(ct))
            while (await reader.ReadAsync(ct))
                PeerSetHash.Toggle(hash, (byte[])reader.GetValue(0), reader.GetString(1), reader.GetString(2));
        await Exec(c, tx, "UPDATE fleet_state SET set_hash = @h WHERE id = 1", ("h", hash));
    }

    public async Task<T> WriteAsync<T>(Func<IStoreTx, Task<T>> work, CancellationToken ct)
    {
        await using var connection = await dialect.OpenAsync(ct);
        var (tx, lease) = await dialect.BeginWriteAsync(connection, ct);
        using (lease)
        await using (tx)
        {
            try
            {
                T result = await work(new Tx(this, connection, tx, ct));
                await tx.CommitAsync(ct);
                return result;
            }
            catch (Exception e) when (dialect.IsUniqueViolation(e))
            {
                throw new FleetException(FleetError.Duplicate, "already exists");
            }
        }
    }

    public async Task<T> ReadAsync<T>(Func<IStoreTx, Task<T>> work, CancellationToken ct)
    {
        await using var connection = await dialect.OpenAsync(ct);
        await using var tx = await dialect.BeginReadAsync(connection, ct);
        return await work(new Tx(this, connection, tx, ct));
    }

    public Task ListenAsync(Func<string, Task> onNotification, CancellationToken ct) => dialect.ListenAsync(onNotification, ct);

    public Task PublishAsync(string payload, CancellationToken ct) =>
        System.Text.Encoding.UTF8.GetByteCount(payload) <= FleetLimits.MaxNotificationBytes ? dialect.PublishAsync(payload, ct)
            : throw new ArgumentException($"a notification is at most {FleetLimits.MaxNotificationBytes} bytes", nameof(payload));

    /// <summary>Disposes the dialect (connections); the <see cref="SecretsKey"/> stays the caller's.</summary>
    public ValueTask DisposeAsync() => dialect.DisposeAsync();

    private static DbCommand Command(DbConnection c, DbTransaction tx, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = c.CreateCommand();
        command.Transaction = tx;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var p = command.CreateParameter();
            p.ParameterName = name;
            p.Value = value ?? DBNull.Value;
            command.Parameters.Add(p);
        }
        return command;
    }

    private static async Task<int> Exec(DbConnection c, DbTransaction tx, string sql, params (string, object?)[] ps)
    {
        await using var command = Command(c, tx, sql, ps);
        return await command.ExecuteNonQueryAsync();
    }

    private static async Task<long> Scalar(DbConnection c, DbTransaction tx, string sql, params (string, object?)[] ps)
    {
        await using var command = Command(c, tx, sql, ps);
        object? value = await command.ExecuteScalarAsync();
        return value is null or DBNull ? 0 : Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture);
    }

    private sealed partial class Tx(SqlStore store, DbConnection c, DbTransaction tx, CancellationToken ct) : IStoreTx
    {
        private readonly string forUpdate = store.dialect.ForUpdate;
        public long Now { get; } = store.time.GetUtcNow().ToUnixTimeMilliseconds();

        private Task<int> Exec(string sql, params (string, object?)[] ps) => SqlStore.Exec(c, tx, sql, ps);
        private Task<long> Scalar(string sql, params (string, object?)[] ps) => SqlStore.Scalar(c, tx, sql, ps);

        private async Task<List<T>> Query<T>(string sql, Func<DbDataReader, T> map, params (string, object?)[] ps)
        {
            await using var command = Command(c, tx, sql, ps);
            await using var reader = await command.ExecuteReaderAsync(ct);
            var rows = new List<T>();
            while (await reader.ReadAsync(ct)) rows.Add(map(reader));
            return rows;
        }

        private static long L(DbDataReader r, int i) => Convert.ToInt64(r.GetValue(i), System.Globalization.CultureInfo.InvariantCulture);
        private static byte[] B(DbDataReader r, int i) => (byte[])r.GetValue(i);
        private static string? S(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

        // ---- machines
        private const string MachineColumns =
            "id, state, previous_state, identity_key, wg_key, package_digest, placement, applied_revision, enrolled_at, updated_at";

        private static Machine MapMachine(DbDataReader r)
        {
            MachineStateNames.TryParseState(r.GetString(1), out MachineState state);
            MachineState? previous = S(r, 2) is { } p && MachineStateNames.TryParseState(p, out var ps) ? ps : null;
            RelayPlacement? placement = S(r, 6) is { } json ? JsonSerializer.Deserialize(json, StorageJson.Default.RelayPlacement) : null;
            return new Machine(r.GetString(0), state, previous, B(r, 3), B(r, 4), r.GetString(5), placement, L(r, 7), L(r, 8), L(r, 9));
        }

        public async Task<Machine?> GetMachineAsync(string id, bool forUpdate) =>
            (await Query($"SELECT {MachineColumns} FROM machines WHERE id = @id{(forUpdate ? this.forUpdate : "")}", MapMachine, ("id", id)))
            .FirstOrDefault();

        public async Task<Machine?> GetMachineByRelayTokenAsync(byte[] tokenHash) =>
            (await Query($"SELECT {MachineColumns} FROM machines WHERE relay_token_hash = @h", MapMachine, ("h", tokenHash))).FirstOrDefault();

        public Task InsertMachineAsync(Machine m, byte[] relayTokenHash) => Exec(
            "INSERT INTO machines (id, identity_key, state, previous_state, wg_key, package_digest, placement, hostname, relay_token_hash, applied_revision, enrolled_at, updated_at) " +
            "VALUES (@id, @ik, @s, @ps, @wg, @d, @pl, @hn, @t, 0, @now, @now)",
            ("id", m.Id), ("ik", m.IdentityKey), ("s", m.State.Name()), ("ps", m.PreviousState?.Name()), ("wg", m.WireGuardKey),
            ("d", m.PackageDigest), ("pl", PlacementJson(m.Placement)), ("hn", m.Placement?.Hostname), ("t", relayTokenHash), ("now", Now));

        public Task UpdateMachineAsync(Machine m) => Exec(
            "UPDATE machines SET state = @s, previous_state = @ps, wg_key = @wg, package_digest = @d, placement = @pl, hostname = @hn, " +
            "enrolled_at = @e, updated_at = @now WHERE id = @id",
            ("id", m.Id), ("s", m.State.Name()), ("ps", m.PreviousState?.Name()), ("wg", m.WireGuardKey), ("d", m.PackageDigest),
            ("pl", PlacementJson(m.Placement)), ("hn", m.Placement?.Hostname), ("e", m.EnrolledAt), ("now", Now));

        private static string? PlacementJson(RelayPlacement? p) => p is null ? null : JsonSerializer.Serialize(p, StorageJson.Default.RelayPlacement);

        public Task SetRelayTokenAsync(string machineId, byte[] tokenHash) =>
            Exec("UPDATE machines SET relay_token_hash = @h WHERE id = @id", ("h", tokenHash), ("id", machineId));

        public async Task<IReadOnlyList<Machine>> ListMachinesAsync(MachineState? state) => state is { } s
            ? await Query($"SELECT {MachineColumns} FROM machines WHERE state = @s ORDER BY enrolled_at, id", MapMachine, ("s", s.Name()))
            : await Query($"SELECT {MachineColumns} FROM machines ORDER BY enrolled_at, id", MapMachine);

        public async Task<bool> HostnameTakenAsync(string hostname, string exceptMachineId) =>
            await Scalar("SELECT COUNT(*) FROM machines WHERE hostname = @h AND id <> @id", ("h", hostname), ("id", exceptMachineId)) > 0;

        public Task SetAppliedRevisionAsync(string machineId, long revision) =>
            // applied_at (schema 10): when the relay last reported a revision at or above the one it had, i.e. it serves the set
            // (a rollout waits for this after a machine's reboot).
            Exec("UPDATE machines SET applied_at = CASE WHEN applied_revision <= @r THEN @now ELSE applied_at END, " +
                 "applied_revision = CASE WHEN applied_revision < @r THEN @r ELSE applied_revision END WHERE id = @id",
                ("r", revision), ("id", machineId), ("now", Now));

        public async Task<(long Deployed, long Applied)> CountAppliedAsync(long revision)
        {
            var row = await Query(
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN applied_revision >= @r THEN 1 ELSE 0 END), 0) FROM machines WHERE state = 'deployed'",
                r => (L(r, 0), L(r, 1)), ("r", revision));
            return row[0];
        }

        public async Task<IReadOnlyDictionary<MachineState, long>> CountMachinesByStateAsync()
        {
            var counts = Enum.GetValues<MachineState>().ToDictionary(s => s, _ => 0L);
            foreach (var (state, count) in await Query("SELECT state, COUNT(*) FROM machines GROUP BY state", r => (r.GetString(0), L(r, 1))))
                if (MachineStateNames.TryParseState(state, out var s)) counts[s] = count;
            return counts;
        }

        // ---- enrollment
        public async Task InsertNonceAsync(byte[] nonce, long expiresAt)
        {
            await Exec("DELETE FROM enroll_nonces WHERE expires_at < @now", ("now", Now));
            await Exec("INSERT INTO enroll_nonces (nonce, expires_at) VALUES (@n, @e)", ("n", nonce), ("e", expiresAt));
        }

        public async Task<bool> ConsumeNonceAsync(byte[] nonce) =>
            await Exec("DELETE FROM enroll_nonces WHERE nonce = @n AND expires_at >= @now", ("n", nonce), ("now", Now)) == 1;

        public Task AllowPackageAsync(string digest, string addedBy) =>
            Exec("INSERT INTO allowed_packages (digest, added_at, added_by) VALUES (@d, @now, @by) ON CONFLICT (digest) DO NOTHING",
                ("d", digest), ("now", Now), ("by", addedBy));

        // Locks the row (PostgreSQL): a withdrawal's DELETE waits for an enrollment that found it allowed, then drains it.
        public async Task<bool> IsPackageAllowedAsync(string digest) =>
            (await Query($"SELECT digest FROM allowed_packages WHERE digest = @d{forUpdate}", r => r.GetString(0), ("d", digest))).Count > 0;

        public async Task<bool> WithdrawPackageAsync(string digest) =>
            await Exec("DELETE FROM allowed_packages WHERE digest = @d", ("d", digest)) == 1;

        public async Task<IReadOnlyList<Machine>> MachinesRunningAsync(string digest, MachineState state) =>
            await Query($"SELECT {MachineColumns} FROM machines WHERE package_digest = @d AND state = @s ORDER BY id{forUpdate}", MapMachine,
                ("d", digest), ("s", state.Name()));

        public async Task<IReadOnlyList<string>> AllowedPackagesAsync() =>
            await Query("SELECT digest FROM allowed_packages ORDER BY added_at, digest", r => r.GetString(0));

        // ---- staff
        private const string StaffColumns =
            "s.id, s.username, s.role, s.password_hash, s.totp_secret, s.totp_enabled, s.totp_last_step, s.deactivated_at, s.locked_at";

        /// <summary>Columns a query may add after <see cref="StaffColumns"/> start here.</summary>
        private const int AfterStaffColumns = 9;

        // totp_secret is sealed (SecretsKey.SealTotp, schema 9): opened here, so a Staff always holds the secret itself, or null
        // when it does not open (another key, another row), and a TOTP check against null fails.
        private Staff MapStaff(DbDataReader r)
        {
            MachineStateNames.TryParseRole(r.GetString(2), out StaffRole role);
            long id = L(r, 0);
            return new Staff(id, r.GetString(1), role, r.GetString(3), r.IsDBNull(4) ? null : store.secrets.OpenTotp(id, TotpSecretColumn, B(r, 4)),
                L(r, 5) != 0, L(r, 6), r.IsDBNull(7) ? null : L(r, 7), r.IsDBNull(8) ? null : L(r, 8));
        }

        public async Task<long> InsertStaffAsync(string username, StaffRole role, string passwordHash) =>
            (await Query("INSERT INTO staff (username, role, password_hash, created_at) VALUES (@u, @r, @p, @now) RETURNING id",
                r => L(r, 0), ("u", username), ("r", role.Name()), ("p", passwordHash), ("now", Now)))[0];

        public async Task<Staff?> GetStaffAsync(string username) =>
            (await Query($"SELECT {StaffColumns} FROM staff s WHERE s.username = @u", MapStaff, ("u", username))).FirstOrDefault();

        public async Task<IReadOnlyList<Staff>> ListStaffAsync() =>
            await Query($"SELECT {StaffColumns} FROM staff s ORDER BY s.id", MapStaff);

        public Task SetTotpAsync(long staffId, byte[]? secret, bool enabled) =>
            Exec("UPDATE staff SET totp_secret = @s, totp_enabled = @e WHERE id = @id",
                ("s", secret is null ? null : store.secrets.SealTotp(staffId, TotpSecretColumn, secret)), ("e", enabled ? 1L : 0L), ("id", staffId));

        public Task SetTotpLastStepAsync(long staffId, long step) =>
            Exec("UPDATE staff SET totp_last_step = @s WHERE id = @id", ("s", step), ("id", staffId));

        public async Task<long> InsertStaffTokenAsync(byte[] tokenHash, long staffId, string kind, string name, long? expiresAt) =>
            (await Query("INSERT INTO staff_tokens (token_hash, staff_id, kind, name, created_at, expires_at) VALUES (@h, @s, @k, @n, @now, @e) RETURNING id",
                r => L(r, 0), ("h", tokenHash), ("s", staffId), ("k", kind), ("n", name), ("now", Now), ("e", expiresAt)))[0];

        public async Task<Staff?> GetStaffByTokenAsync(byte[] tokenHash) => (await FindStaffTokenAsync(tokenHash))?.Staff;

        public Task DeleteStaffTokenAsync(byte[] tokenHash) => Exec("DELETE FROM staff_tokens WHERE token_hash = @h", ("h", tokenHash));

        public Task AuditAsync(string actor, string action, string target, string? reason, string? detail) =>
            Exec("INSERT INTO audit (at, actor, action, target, reason, detail) VALUES (@now, @a, @ac, @t, @r, @d)",
                ("now", Now), ("a", actor), ("ac", action), ("t", target), ("r", reason), ("d", detail));

        public async Task<IReadOnlyList<AuditEntry>> SearchAuditAsync(AuditQuery query)
        {
            // Keyset paging on the id (a page does not shift when entries are added); filters are parameters, escaped for LIKE.
            var where = new List<string>();
            var ps = new List<(string, object?)> { ("l", (long)query.Limit) };
            if (query.Before is { } before) { where.Add("id < @b"); ps.Add(("b", before)); }
            foreach (var (column, value) in new[] { ("actor", query.Actor), ("action", query.Action), ("target", query.Target) })
            {
                if (string.IsNullOrEmpty(value)) continue;
                where.Add($"LOWER({column}) LIKE @{column} ESCAPE '!'");
                ps.Add((column, "%" + value.ToLowerInvariant().Replace("!", "!!").Replace("%", "!%").Replace("_", "!_") + "%"));
            }
            string filter = where.Count == 0 ? "" : " WHERE " + string.Join(" AND ", where);
            return await Query($"SELECT id, at, actor, action, target, reason, detail FROM audit{filter} ORDER BY id DESC LIMIT @l",
                r => new AuditEntry(L(r, 0), L(r, 1), r.GetString(2), r.GetString(3), r.GetString(4), S(r, 5), S(r, 6)), [.. ps]);
        }

        // ---- customers
        // Accounts are keyed by the HMAC of their number (schema 9): the number is hashed here and never written.
        private const string AccountColumns = "id, number_hmac, created_at, device_limit";

        private static Account MapAccount(DbDataReader r) => new(L(r, 0), r.GetString(1), L(r, 2), (int)L(r, 3));

        public async Task<Account> InsertAccountAsync(string number, int deviceLimit)
        {
            string hmac = store.secrets.AccountNumberHmac(number);
            long id = (await Query("INSERT INTO accounts (number_hmac, created_at, device_limit) VALUES (@h, @now, @l) RETURNING id",
                r => L(r, 0), ("h", hmac), ("now", Now), ("l", (long)deviceLimit)))[0];
            return new Account(id, hmac, Now, deviceLimit);
        }

        public async Task<Account?> GetAccountAsync(string number) =>
            (await Query($"SELECT {AccountColumns} FROM accounts WHERE number_hmac = @h", MapAccount,
                ("h", store.secrets.AccountNumberHmac(number)))).FirstOrDefault();

        // Staff look-ups only (rare): the prefix is not indexed on its own, so this scans.
        public async Task<Account?> GetAccountByIdAsync(string accountId) =>
            (await Query($"SELECT {AccountColumns} FROM accounts WHERE substr(number_hmac, 1, {SecretsKey.AccountIdLength}) = @p", MapAccount,
                ("p", accountId))).FirstOrDefault();

        public Task DeleteAccountAsync(long accountId) => Exec("DELETE FROM accounts WHERE id = @id", ("id", accountId));

        public Task<long> CountAccountsAsync() => Scalar("SELECT COUNT(*) FROM accounts");

        private static Device MapDevice(DbDataReader r) =>
            new(L(r, 0), L(r, 1), B(r, 2), r.GetString(3), r.GetString(4), L(r, 5), L(r, 6));

        public async Task<IReadOnlyList<Device>> ListDevicesAsync(long accountId) =>
            await Query("SELECT id, account_id, public_key, ipv4, ipv6, created_at, revision FROM devices WHERE account_id = @a ORDER BY id",
                MapDevice, ("a", accountId));

        public Task<long> CountDevicesAsync(long? accountId) => accountId is { } a
            ? Scalar("SELECT COUNT(*) FROM devices WHERE account_id = @a", ("a", a))
            : Scalar("SELECT COUNT(*) FROM devices");

        public async Task<bool> DeviceKeyExistsAsync(byte[] publicKey) =>
            await Scalar("SELECT COUNT(*) FROM devices WHERE public_key = @k", ("k", publicKey)) > 0;

        public async Task<Device> InsertDeviceAsync(long accountId, byte[] publicKey, string ipv4, string ipv6, long revision)
        {
            long id = (await Query(
                "INSERT INTO devices (account_id, public_key, ipv4, ipv6, created_at, revision) VALUES (@a, @k, @v4, @v6, @now, @r) RETURNING id",
                r => L(r, 0), ("a", accountId), ("k", publicKey), ("v4", ipv4), ("v6", ipv6), ("now", Now), ("r", revision)))[0];
            return new Device(id, accountId, publicKey, ipv4, ipv6, Now, revision);
        }

        public async Task<Device?> GetDeviceAsync(long accountId, long deviceId) =>
            (await Query("SELECT id, account_id, public_key, ipv4, ipv6, created_at, revision FROM devices WHERE id = @id AND account_id = @a",
                MapDevice, ("id", deviceId), ("a", accountId))).FirstOrDefault();

        public Task DeleteDeviceAsync(long deviceId) => Exec("DELETE FROM devices WHERE id = @id", ("id", deviceId));

        // ---- peer log
        public async Task<PeerState> PeerStateAsync(bool lockRow) =>
            (await Query($"SELECT revision, set_hash, next_address, device_count FROM fleet_state WHERE id = 1{(lockRow ? forUpdate : "")}",
                r => new PeerState(L(r, 0), B(r, 1), L(r, 2), L(r, 3))))[0];

        public Task SavePeerStateAsync(PeerState s) =>
            Exec("UPDATE fleet_state SET revision = @r, set_hash = @h, next_address = @n, device_count = @d WHERE id = 1",
                ("r", s.Revision), ("h", s.SetHash), ("n", s.NextAddress), ("d", s.Devices));

        public Task<long> HeadRevisionAsync() => Scalar("SELECT revision FROM fleet_state WHERE id = 1");

        public Task InsertChangeAsync(PeerChange ch) =>
            Exec("INSERT INTO peer_changes (revision, kind, public_key, ipv4, ipv6, set_hash, device_id) VALUES (@r, @k, @p, @v4, @v6, @h, @d)",
                ("r", ch.Revision), ("k", (long)ch.Kind), ("p", ch.PublicKey), ("v4", ch.Ipv4), ("v6", ch.Ipv6), ("h", ch.SetHash), ("d", ch.DeviceId));

        // Never an entry at or below scrubbed_through: a reader behind it sees a gap and takes a snapshot.
        public async Task<IReadOnlyList<PeerChange>> ChangesAfterAsync(long revision, int limit) =>
            await Query("SELECT revision, kind, public_key, ipv4, ipv6, set_hash, device_id FROM peer_changes " +
                        "WHERE revision > @r AND revision > (SELECT scrubbed_through FROM fleet_state WHERE id = 1) ORDER BY revision LIMIT @l",
                r => new PeerChange(L(r, 0), (PeerChangeKind)L(r, 1), B(r, 2), r.GetString(3), r.GetString(4), B(r, 5), r.IsDBNull(6) ? null : L(r, 6)),
                ("r", revision), ("l", (long)limit));

        public async Task<long> OldestChangeAsync()
        {
            long oldest = await Scalar("SELECT COALESCE(MIN(revision), 0) FROM peer_changes");
            if (oldest == 0) oldest = await HeadRevisionAsync() + 1;
            return Math.Max(oldest, await Scalar("SELECT scrubbed_through FROM fleet_state WHERE id = 1") + 1);
        }

        public async Task<int> ScrubDeletedKeysAsync()
        {
            long scrubbed = await Scalar("SELECT scrubbed_through FROM fleet_state WHERE id = 1");
            // No streaming relay: nobody needs a delta; every relay that starts later begins with a snapshot.
            long through = await Scalar("SELECT COALESCE(MIN(applied_revision), (SELECT revision FROM fleet_state WHERE id = 1)) FROM machines " +
                                        "WHERE state IN ('provisioned', 'deployed', 'draining')");
            if (through <= scrubbed) return 0;
            int count = await Exec(
                "UPDATE peer_changes SET public_key = @empty, set_hash = @empty WHERE revision > @s AND revision <= @t " +
                "AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.public_key = peer_changes.public_key)",
                ("empty", Array.Empty<byte>()), ("s", scrubbed), ("t", through));
            await Exec("UPDATE fleet_state SET scrubbed_through = @t WHERE id = 1 AND scrubbed_through < @t", ("t", through));
            return count;
        }

        public Task<int> CompactChangesAsync(long beforeRevision) =>
            Exec("DELETE FROM peer_changes WHERE revision < @r", ("r", beforeRevision));

        public async IAsyncEnumerable<SnapshotPeer> AllPeersAsync([EnumeratorCancellation] CancellationToken cancel)
        {
            await using var command = Command(c, tx, "SELECT public_key, ipv4, ipv6 FROM devices ORDER BY id");
            await using var reader = await command.ExecuteReaderAsync(cancel);
            while (await reader.ReadAsync(cancel))
                yield return new SnapshotPeer(B(reader, 0), reader.GetString(1), reader.GetString(2));
        }

        public Task NotifyAsync(string payload) => store.dialect.NotifyAsync(c, tx, payload);
    }
}

using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Tabula.Fleet.Storage.Sqlite;

/// <summary>
/// SQLite in WAL mode: readers see a snapshot while one writer commits. Writers are serialised in process
/// with a semaphore before BEGIN IMMEDIATE, so they queue instead of spinning on SQLITE_BUSY. One file,
/// one controller instance (several instances need PostgreSQL). secure_delete overwrites what a DELETE or UPDATE frees
/// (a deleted device's key must not stay readable in the file; tests/Tabula.Fleet.Tests/DeletedKeyTests.cs).
/// The file is created 0600 before SQLite opens it, and SQLite gives its -wal, -shm and -journal files the database file's
/// mode, so none of them is readable by group or others (issue 17, "At rest"; AtRestTests).
/// </summary>
public sealed class SqliteDialect(string path) : SqlDialect
{
    /// <summary>The files SQLite keeps beside the database (WAL mode: -wal, -shm; a rollback journal: -journal).</summary>
    public static readonly string[] CompanionSuffixes = ["-wal", "-shm", "-journal"];

    private readonly string connectionString = new SqliteConnectionStringBuilder
    {
        DataSource = path, Pooling = true, Mode = SqliteOpenMode.ReadWriteCreate, DefaultTimeout = 30,
    }.ToString();
    private readonly SemaphoreSlim writer = new(1, 1);

    public override string Kind => "sqlite";
    public override string ForUpdate => "";
    public override IReadOnlyList<string> Migrations => SqliteSchema.Migrations;

    public override async Task<DbConnection> OpenAsync(CancellationToken ct)
    {
        var connection = new SqliteConnection(connectionString);
        await connection.OpenAsync(ct);
        using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=30000; PRAGMA secure_delete=ON;";
        await pragma.ExecuteNonQueryAsync(ct);
        return connection;
    }

    /// <summary>
    /// Creates the database file empty with mode 0600 if it is missing (SQLite takes an empty file as an empty database and
    /// creates its companions with the database file's mode), and takes group and other bits off an existing database and
    /// its companions (files made by an earlier version, or by sqlite3 under a loose umask).
    /// </summary>
    public override void PrepareFiles()
    {
        if (OperatingSystem.IsWindows() || path is "" or ":memory:" || path.StartsWith("file:", StringComparison.Ordinal)) return;
        const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        const UnixFileMode Shared = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                                    | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        string full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            if (Path.GetDirectoryName(full) is { } directory) Directory.CreateDirectory(directory);
            try
            {
                using var created = new FileStream(full, new FileStreamOptions
                {
                    Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.ReadWrite, UnixCreateMode = Private,
                });
            }
            catch (IOException) when (File.Exists(full)) { }
        }
        foreach (string file in CompanionSuffixes.Select(s => full + s).Prepend(full))
            if (File.Exists(file) && (File.GetUnixFileMode(file) & Shared) != 0)
                File.SetUnixFileMode(file, File.GetUnixFileMode(file) & ~Shared);
    }

    public override async Task CompactAfterRewriteAsync(IReadOnlyList<string> tables, CancellationToken ct)
    {
        // secure_delete zeroed what the rewrite freed in the pages; the checkpoint writes those pages into the database file
        // (over the old ones) and truncates the WAL, which held the rewrite's frames.
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA wal_checkpoint(TRUNCATE)";
        await command.ExecuteNonQueryAsync(ct);
    }

    public override async Task<(DbTransaction Tx, IDisposable Lease)> BeginWriteAsync(DbConnection connection, CancellationToken ct)
    {
        await writer.WaitAsync(ct);
        try
        {
            var tx = ((SqliteConnection)connection).BeginTransaction(deferred: false);
            return (tx, new Release(writer));
        }
        catch { writer.Release(); throw; }
    }

    public override Task<DbTransaction> BeginReadAsync(DbConnection connection, CancellationToken ct) =>
        Task.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(deferred: true));

    public override Task LockForMigrationAsync(DbConnection connection, DbTransaction tx, CancellationToken ct) => Task.CompletedTask;

    public override bool IsUniqueViolation(Exception e) =>
        e is SqliteException { SqliteErrorCode: 19, SqliteExtendedErrorCode: 2067 or 1555 };

    public override Task NotifyAsync(DbConnection connection, DbTransaction tx, string payload) => Task.CompletedTask;

    public override Task ListenAsync(Func<string, Task> onNotification, CancellationToken ct) =>
        Task.Delay(Timeout.Infinite, ct).ContinueWith(_ => { }, TaskScheduler.Default);

    public override ValueTask DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        return ValueTask.CompletedTask;
    }

    private sealed class Release(SemaphoreSlim semaphore) : IDisposable
    {
        private int released;
        public void Dispose() { if (Interlocked.Exchange(ref released, 1) == 0) semaphore.Release(); }
    }
}

internal static class SqliteSchema
{
    public static readonly string[] Migrations =
    [
        """
        CREATE TABLE fleet_state (id INTEGER PRIMARY KEY CHECK (id = 1), revision INTEGER NOT NULL,
            set_hash BLOB NOT NULL, next_address INTEGER NOT NULL);
        INSERT INTO fleet_state VALUES (1, 0, zeroblob(32), 0);
        CREATE TABLE machines (id TEXT PRIMARY KEY, identity_key BLOB NOT NULL UNIQUE, state TEXT NOT NULL,
            previous_state TEXT, wg_key BLOB NOT NULL, package_digest TEXT NOT NULL, placement TEXT,
            hostname TEXT UNIQUE, relay_token_hash BLOB UNIQUE, applied_revision INTEGER NOT NULL DEFAULT 0,
            enrolled_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
        CREATE TABLE enroll_nonces (nonce BLOB PRIMARY KEY, expires_at INTEGER NOT NULL);
        CREATE TABLE enroll_tokens (token_hash BLOB PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL,
            created_by TEXT NOT NULL);
        CREATE TABLE allowed_packages (digest TEXT PRIMARY KEY, added_at INTEGER NOT NULL, added_by TEXT NOT NULL);
        CREATE TABLE staff (id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
            password_hash TEXT NOT NULL, totp_secret BLOB, totp_enabled INTEGER NOT NULL DEFAULT 0,
            totp_last_step INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
        CREATE TABLE staff_tokens (token_hash BLOB PRIMARY KEY, staff_id INTEGER NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
            kind TEXT NOT NULL, name TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER);
        CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor TEXT NOT NULL,
            action TEXT NOT NULL, target TEXT NOT NULL, reason TEXT, detail TEXT);
        CREATE TABLE accounts (id INTEGER PRIMARY KEY AUTOINCREMENT, number TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL, device_limit INTEGER NOT NULL);
        CREATE TABLE devices (id INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER NOT NULL REFERENCES accounts(id),
            public_key BLOB NOT NULL UNIQUE, ipv4 TEXT NOT NULL, ipv6 TEXT NOT NULL, created_at INTEGER NOT NULL,
            revision INTEGER NOT NULL);
        CREATE INDEX devices_account ON devices (account_id);
        CREATE TABLE peer_changes (revision INTEGER PRIMARY KEY, kind INTEGER NOT NULL, public_key BLOB NOT NULL,
            ipv4 TEXT NOT NULL, ipv6 TEXT NOT NULL, set_hash BLOB NOT NULL);
        """,
        // 2: the peer-set hash moved from address text to address bytes (PeerSetHash v2). The log's hashes are v1, so the
        // log goes (a relay behind the head resubscribes with a snapshot); SqlStore recomputes the state's hash after this.
        "DELETE FROM peer_changes",
        // 3: freshness (issue 16): release classes with their current package and floor, the releases staff named, every
        // boot ticket issued (nonce as SHA-256), each machine's freshness as reported at its latest enrollment, settings.
        """
        CREATE TABLE release_classes (machine_class TEXT PRIMARY KEY, current_digest TEXT, current_release INTEGER,
            min_release INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL);
        CREATE TABLE releases (digest TEXT PRIMARY KEY, machine_class TEXT NOT NULL, release_number INTEGER NOT NULL,
            added_at INTEGER NOT NULL, added_by TEXT NOT NULL);
        CREATE TABLE boot_tickets (id INTEGER PRIMARY KEY AUTOINCREMENT, machine_id TEXT NOT NULL, nonce_sha256 BLOB NOT NULL,
            package_digest TEXT NOT NULL, machine_class TEXT NOT NULL, min_release INTEGER NOT NULL, issued_at INTEGER NOT NULL);
        CREATE INDEX boot_tickets_machine ON boot_tickets (machine_id, nonce_sha256);
        CREATE TABLE machine_freshness (machine_id TEXT PRIMARY KEY REFERENCES machines(id), status TEXT NOT NULL, reason TEXT,
            release_number INTEGER NOT NULL, machine_class TEXT, ticket_issued_at INTEGER, reported_at INTEGER NOT NULL);
        CREATE TABLE fleet_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
        // 4: deleted devices leave no key behind (issue 17): log entries name their device, and fleet_state remembers how
        // far the log was scrubbed (IKeyScrubTx).
        """
        ALTER TABLE peer_changes ADD COLUMN device_id INTEGER;
        ALTER TABLE fleet_state ADD COLUMN scrubbed_through INTEGER NOT NULL DEFAULT 0;
        """,
        // 5: availability (issue 17): tunnel address slots freed by removals (reused once every relay applied the removal and
        // the quarantine passed), a per-account window of device additions, staff-issued vouchers (hashed) and proof-of-work
        // challenges for account creation.
        """
        CREATE TABLE released_addresses (slot INTEGER PRIMARY KEY, revision INTEGER NOT NULL, released_at INTEGER NOT NULL);
        CREATE INDEX released_addresses_at ON released_addresses (released_at);
        ALTER TABLE accounts ADD COLUMN churn_window_start INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE accounts ADD COLUMN churn_count INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE vouchers (id INTEGER PRIMARY KEY AUTOINCREMENT, code_hash BLOB NOT NULL UNIQUE, name TEXT NOT NULL,
            max_uses INTEGER NOT NULL, uses INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, created_by TEXT NOT NULL,
            expires_at INTEGER, revoked_at INTEGER);
        CREATE TABLE account_challenges (challenge BLOB PRIMARY KEY, expires_at INTEGER NOT NULL);
        """,
        // 6: fleet capacity (issue 17, peer-limit wipe loop): the device count kept in fleet_state with every add and removal
        // (under its row lock), so an add checks the capacity without counting the table.
        """
        ALTER TABLE fleet_state ADD COLUMN device_count INTEGER NOT NULL DEFAULT 0;
        UPDATE fleet_state SET device_count = (SELECT COUNT(*) FROM devices) WHERE id = 1;
        """,
        // 7: tokens (issue 17): staff and enrollment tokens get ids (to list and revoke them) and a last use; enrollment tokens
        // an expiry, single use and a machine binding; staff a deactivation time and a pending TOTP secret (re-enrollment keeps
        // the current one until the new one is confirmed). SQLite adds no key column to a table: both are rebuilt.
        """
        CREATE TABLE staff_tokens_v7 (id INTEGER PRIMARY KEY AUTOINCREMENT, token_hash BLOB NOT NULL UNIQUE,
            staff_id INTEGER NOT NULL REFERENCES staff(id) ON DELETE CASCADE, kind TEXT NOT NULL, name TEXT NOT NULL,
            created_at INTEGER NOT NULL, expires_at INTEGER, last_used_at INTEGER);
        INSERT INTO staff_tokens_v7 (token_hash, staff_id, kind, name, created_at, expires_at)
            SELECT token_hash, staff_id, kind, name, created_at, expires_at FROM staff_tokens ORDER BY created_at;
        DROP TABLE staff_tokens;
        ALTER TABLE staff_tokens_v7 RENAME TO staff_tokens;
        CREATE INDEX staff_tokens_staff ON staff_tokens (staff_id);
        CREATE TABLE enroll_tokens_v7 (id INTEGER PRIMARY KEY AUTOINCREMENT, token_hash BLOB NOT NULL UNIQUE, name TEXT NOT NULL,
            created_at INTEGER NOT NULL, created_by TEXT NOT NULL, expires_at INTEGER, single_use INTEGER NOT NULL DEFAULT 0,
            used_at INTEGER, machine_id TEXT, last_used_at INTEGER);
        INSERT INTO enroll_tokens_v7 (token_hash, name, created_at, created_by)
            SELECT token_hash, name, created_at, created_by FROM enroll_tokens ORDER BY created_at;
        DROP TABLE enroll_tokens;
        ALTER TABLE enroll_tokens_v7 RENAME TO enroll_tokens;
        ALTER TABLE staff ADD COLUMN deactivated_at INTEGER;
        ALTER TABLE staff ADD COLUMN totp_pending BLOB;
        """,
        // 8: login (issue 17): failed logins per username as typed (known or not, so backoff looks the same for both; a success
        // deletes the row), when a staff member was locked out, and every TOTP step a staff member used (one row each: a code is
        // accepted once).
        """
        CREATE TABLE login_failures (username TEXT PRIMARY KEY, failures INTEGER NOT NULL, last_failed_at INTEGER NOT NULL,
            next_attempt_at INTEGER NOT NULL);
        CREATE INDEX login_failures_last ON login_failures (last_failed_at);
        CREATE TABLE totp_used (staff_id INTEGER NOT NULL REFERENCES staff(id) ON DELETE CASCADE, step INTEGER NOT NULL,
            used_at INTEGER NOT NULL, PRIMARY KEY (staff_id, step));
        ALTER TABLE staff ADD COLUMN locked_at INTEGER;
        """,
        // 9: at rest (issue 17): an account is found by the HMAC of its number under the secrets key (never the number), and TOTP
        // secrets are sealed with it. The number column is renamed, keeping its UNIQUE index, and SqlStore.SealAtRestAsync
        // replaces every number with its HMAC and seals every TOTP secret in this migration's transaction.
        "ALTER TABLE accounts RENAME COLUMN number TO number_hmac",
        // 10: rollouts (issue 18): a rollout and its machines in order with their steps, each machine's pinned boot target (boot
        // tickets name it instead of the class's current package, so a machine rebooting outside the rollout keeps its release),
        // the newest reboot command per machine (its sequence only grows), and when a relay last reported a revision it caught up to.
        """
        CREATE TABLE rollouts (id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, release_number INTEGER, digest TEXT NOT NULL,
            machine_class TEXT, state TEXT NOT NULL, canary INTEGER NOT NULL, batch INTEGER, max_unavailable INTEGER,
            drain_seconds INTEGER NOT NULL, per_location_min INTEGER NOT NULL, deadline_seconds INTEGER NOT NULL,
            min_serving_percent INTEGER NOT NULL, baseline_serving INTEGER NOT NULL, created_by TEXT NOT NULL, created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL, halt_reason TEXT, lease_owner TEXT, lease_until INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE rollout_machines (rollout_id INTEGER NOT NULL REFERENCES rollouts(id), machine_id TEXT NOT NULL, position INTEGER NOT NULL,
            hostname TEXT, location TEXT, step TEXT NOT NULL, started_at INTEGER, finished_at INTEGER, from_sha256 TEXT NOT NULL,
            booted_sha256 TEXT, reason TEXT, enrolled_seen INTEGER, expect_revision INTEGER, PRIMARY KEY (rollout_id, machine_id));
        CREATE TABLE machine_targets (machine_id TEXT PRIMARY KEY, digest TEXT NOT NULL, rollout_id INTEGER NOT NULL, set_at INTEGER NOT NULL);
        CREATE TABLE reboot_commands (machine_id TEXT PRIMARY KEY, sequence INTEGER NOT NULL, command TEXT NOT NULL, rollout_id INTEGER NOT NULL,
            issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, acked_at INTEGER, ack TEXT);
        ALTER TABLE machines ADD COLUMN applied_at INTEGER;
        """,
        // 11: health samples (issue 18, dashboard plots): per minute and location, counts only (HealthSampler); pruned after 48 h.
        """
        CREATE TABLE health_samples (at INTEGER NOT NULL, location TEXT NOT NULL, deployed INTEGER NOT NULL, serving INTEGER NOT NULL,
            peers INTEGER NOT NULL, connected INTEGER NOT NULL, PRIMARY KEY (at, location));
        """,
        // 12: attestation (issue 19): the credential-activation challenge made with an enrollment nonce (the AK's name, the
        // EK's certificate digest, SHA-256 of the secret; consumed at enrollment), and each machine's attestation as its latest
        // enrollment left it: status, the failed step and why, the measured package and release, the issued AK certificate.
        """
        CREATE TABLE attestation_challenges (nonce BLOB PRIMARY KEY, ak_name BLOB NOT NULL, ek_sha256 BLOB NOT NULL,
            secret_sha256 BLOB NOT NULL, expires_at INTEGER NOT NULL);
        CREATE TABLE machine_attestation (machine_id TEXT PRIMARY KEY REFERENCES machines(id), status TEXT NOT NULL,
            failed_step TEXT, detail TEXT, package_digest TEXT, release_number INTEGER NOT NULL DEFAULT 0, ak_certificate BLOB,
            ek_sha256 BLOB, attested_at INTEGER NOT NULL);
        """,
    ];
}

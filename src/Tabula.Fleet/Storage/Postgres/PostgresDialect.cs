using System.Data;
using System.Data.Common;
using Npgsql;

namespace Tabula.Fleet.Storage.Postgres;

/// <summary>
/// PostgreSQL for fleets served by several controller instances. Device changes serialise on the
/// fleet_state row (SELECT … FOR UPDATE), so revisions commit in order; NOTIFY inside the transaction
/// reaches every instance's LISTEN connection at commit, and each instance then reads the new changes.
/// </summary>
public sealed class PostgresDialect : SqlDialect
{
    public const string Channel = "tabula_fleet";
    private readonly NpgsqlDataSource dataSource;
    private readonly string connectionString;

    public PostgresDialect(string connectionString)
    {
        this.connectionString = connectionString;
        dataSource = NpgsqlDataSource.Create(connectionString);
    }

    public override string Kind => "postgres";
    public override string ForUpdate => " FOR UPDATE";
    public override IReadOnlyList<string> Migrations => PostgresSchema.Migrations;

    public override async Task<DbConnection> OpenAsync(CancellationToken ct) => await dataSource.OpenConnectionAsync(ct);

    public override void PrepareFiles() { }

    public override async Task CompactAfterRewriteAsync(IReadOnlyList<string> tables, CancellationToken ct)
    {
        // Not in a transaction (VACUUM cannot be); the tables are the store's own names, never input.
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var command = new NpgsqlCommand("VACUUM (FULL) " + string.Join(", ", tables), connection);
        await command.ExecuteNonQueryAsync(ct);
    }

    public override async Task<(DbTransaction Tx, IDisposable Lease)> BeginWriteAsync(DbConnection connection, CancellationToken ct) =>
        (await ((NpgsqlConnection)connection).BeginTransactionAsync(IsolationLevel.ReadCommitted, ct), NoLease.Instance);

    public override async Task<DbTransaction> BeginReadAsync(DbConnection connection, CancellationToken ct) =>
        await ((NpgsqlConnection)connection).BeginTransactionAsync(IsolationLevel.RepeatableRead, ct);

    public override async Task LockForMigrationAsync(DbConnection connection, DbTransaction tx, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand("SELECT pg_advisory_xact_lock(7413)", (NpgsqlConnection)connection, (NpgsqlTransaction)tx);
        await command.ExecuteNonQueryAsync(ct);
    }

    public override bool IsUniqueViolation(Exception e) => e is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation };

    public override async Task NotifyAsync(DbConnection connection, DbTransaction tx, string payload)
    {
        await using var command = new NpgsqlCommand("SELECT pg_notify(@channel, @payload)", (NpgsqlConnection)connection, (NpgsqlTransaction)tx);
        command.Parameters.AddWithValue("channel", Channel);
        command.Parameters.AddWithValue("payload", payload);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>pg_notify in its own (autocommit) statement on a pooled connection: delivered at once.</summary>
    public override async Task PublishAsync(string payload, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var command = new NpgsqlCommand("SELECT pg_notify(@channel, @payload)", connection);
        command.Parameters.AddWithValue("channel", Channel);
        command.Parameters.AddWithValue("payload", payload);
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>One dedicated LISTEN connection per instance, reconnected after a failure.</summary>
    public override async Task ListenAsync(Func<string, Task> onNotification, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var builder = new NpgsqlConnectionStringBuilder(connectionString) { KeepAlive = 10, Pooling = false };
                await using var connection = new NpgsqlConnection(builder.ToString());
                await connection.OpenAsync(ct);
                var pending = new List<string>();
                connection.Notification += (_, e) => { lock (pending) pending.Add(e.Payload); };
                await using (var listen = new NpgsqlCommand($"LISTEN {Channel}", connection))
                    await listen.ExecuteNonQueryAsync(ct);
                await onNotification("listening");   // catch up on whatever happened while not listening
                while (!ct.IsCancellationRequested)
                {
                    await connection.WaitAsync(ct);
                    string[] payloads;
                    lock (pending) { payloads = [.. pending]; pending.Clear(); }
                    foreach (string payload in payloads) await onNotification(payload);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), ct).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    public override ValueTask DisposeAsync() => dataSource.DisposeAsync();
}

internal static class PostgresSchema
{
    public static readonly string[] Migrations =
    [
        """
        CREATE TABLE fleet_state (id BIGINT PRIMARY KEY CHECK (id = 1), revision BIGINT NOT NULL,
            set_hash BYTEA NOT NULL, next_address BIGINT NOT NULL);
        INSERT INTO fleet_state VALUES (1, 0, decode(repeat('00', 32), 'hex'), 0);
        CREATE TABLE machines (id TEXT PRIMARY KEY, identity_key BYTEA NOT NULL UNIQUE, state TEXT NOT NULL,
            previous_state TEXT, wg_key BYTEA NOT NULL, package_digest TEXT NOT NULL, placement TEXT,
            hostname TEXT UNIQUE, relay_token_hash BYTEA UNIQUE, applied_revision BIGINT NOT NULL DEFAULT 0,
            enrolled_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
        CREATE TABLE enroll_nonces (nonce BYTEA PRIMARY KEY, expires_at BIGINT NOT NULL);
        CREATE TABLE enroll_tokens (token_hash BYTEA PRIMARY KEY, name TEXT NOT NULL, created_at BIGINT NOT NULL,
            created_by TEXT NOT NULL);
        CREATE TABLE allowed_packages (digest TEXT PRIMARY KEY, added_at BIGINT NOT NULL, added_by TEXT NOT NULL);
        CREATE TABLE staff (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, username TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL, password_hash TEXT NOT NULL, totp_secret BYTEA, totp_enabled BIGINT NOT NULL DEFAULT 0,
            totp_last_step BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL);
        CREATE TABLE staff_tokens (token_hash BYTEA PRIMARY KEY, staff_id BIGINT NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
            kind TEXT NOT NULL, name TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT);
        CREATE TABLE audit (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL,
            action TEXT NOT NULL, target TEXT NOT NULL, reason TEXT, detail TEXT);
        CREATE TABLE accounts (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, number TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL, device_limit BIGINT NOT NULL);
        CREATE TABLE devices (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, account_id BIGINT NOT NULL REFERENCES accounts(id),
            public_key BYTEA NOT NULL UNIQUE, ipv4 TEXT NOT NULL, ipv6 TEXT NOT NULL, created_at BIGINT NOT NULL,
            revision BIGINT NOT NULL);
        CREATE INDEX devices_account ON devices (account_id);
        CREATE TABLE peer_changes (revision BIGINT PRIMARY KEY, kind BIGINT NOT NULL, public_key BYTEA NOT NULL,
            ipv4 TEXT NOT NULL, ipv6 TEXT NOT NULL, set_hash BYTEA NOT NULL);
        """,
        // 2: the peer-set hash moved from address text to address bytes (PeerSetHash v2). The log's hashes are v1, so the
        // log goes (a relay behind the head resubscribes with a snapshot); SqlStore recomputes the state's hash after this.
        "DELETE FROM peer_changes",
        // 3: freshness (issue 16): release classes with their current package and floor, the releases staff named, every
        // boot ticket issued (nonce as SHA-256), each machine's freshness as reported at its latest enrollment, settings.
        """
        CREATE TABLE release_classes (machine_class TEXT PRIMARY KEY, current_digest TEXT, current_release BIGINT,
            min_release BIGINT NOT NULL DEFAULT 0, updated_at BIGINT NOT NULL);
        CREATE TABLE releases (digest TEXT PRIMARY KEY, machine_class TEXT NOT NULL, release_number BIGINT NOT NULL,
            added_at BIGINT NOT NULL, added_by TEXT NOT NULL);
        CREATE TABLE boot_tickets (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, machine_id TEXT NOT NULL, nonce_sha256 BYTEA NOT NULL,
            package_digest TEXT NOT NULL, machine_class TEXT NOT NULL, min_release BIGINT NOT NULL, issued_at BIGINT NOT NULL);
        CREATE INDEX boot_tickets_machine ON boot_tickets (machine_id, nonce_sha256);
        CREATE TABLE machine_freshness (machine_id TEXT PRIMARY KEY REFERENCES machines(id), status TEXT NOT NULL, reason TEXT,
            release_number BIGINT NOT NULL, machine_class TEXT, ticket_issued_at BIGINT, reported_at BIGINT NOT NULL);
        CREATE TABLE fleet_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
        // 4: deleted devices leave no key behind (issue 17): log entries name their device, and fleet_state remembers how
        // far the log was scrubbed (IKeyScrubTx).
        """
        ALTER TABLE peer_changes ADD COLUMN device_id BIGINT;
        ALTER TABLE fleet_state ADD COLUMN scrubbed_through BIGINT NOT NULL DEFAULT 0;
        """,
        // 5: availability (issue 17): tunnel address slots freed by removals (reused once every relay applied the removal and
        // the quarantine passed), a per-account window of device additions, staff-issued vouchers (hashed) and proof-of-work
        // challenges for account creation.
        """
        CREATE TABLE released_addresses (slot BIGINT PRIMARY KEY, revision BIGINT NOT NULL, released_at BIGINT NOT NULL);
        CREATE INDEX released_addresses_at ON released_addresses (released_at);
        ALTER TABLE accounts ADD COLUMN churn_window_start BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE accounts ADD COLUMN churn_count BIGINT NOT NULL DEFAULT 0;
        CREATE TABLE vouchers (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, code_hash BYTEA NOT NULL UNIQUE, name TEXT NOT NULL,
            max_uses BIGINT NOT NULL, uses BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, created_by TEXT NOT NULL,
            expires_at BIGINT, revoked_at BIGINT);
        CREATE TABLE account_challenges (challenge BYTEA PRIMARY KEY, expires_at BIGINT NOT NULL);
        """,
        // 6: fleet capacity (issue 17, peer-limit wipe loop): the device count kept in fleet_state with every add and removal
        // (under its row lock), so an add checks the capacity without counting the table.
        """
        ALTER TABLE fleet_state ADD COLUMN device_count BIGINT NOT NULL DEFAULT 0;
        UPDATE fleet_state SET device_count = (SELECT COUNT(*) FROM devices) WHERE id = 1;
        """,
        // 7: tokens (issue 17): staff and enrollment tokens get ids (to list and revoke them) and a last use; enrollment tokens
        // an expiry, single use and a machine binding; staff a deactivation time and a pending TOTP secret (re-enrollment keeps
        // the current one until the new one is confirmed).
        """
        ALTER TABLE staff_tokens ADD COLUMN id BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE, ADD COLUMN last_used_at BIGINT;
        CREATE INDEX staff_tokens_staff ON staff_tokens (staff_id);
        ALTER TABLE enroll_tokens ADD COLUMN id BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE, ADD COLUMN expires_at BIGINT,
            ADD COLUMN single_use BIGINT NOT NULL DEFAULT 0, ADD COLUMN used_at BIGINT, ADD COLUMN machine_id TEXT, ADD COLUMN last_used_at BIGINT;
        ALTER TABLE staff ADD COLUMN deactivated_at BIGINT, ADD COLUMN totp_pending BYTEA;
        """,
        // 8: login (issue 17): failed logins per username as typed (known or not, so backoff looks the same for both; a success
        // deletes the row), when a staff member was locked out, and every TOTP step a staff member used (one row each: a code is
        // accepted once, also by two instances at once: the second INSERT waits for the first and then finds its row).
        """
        CREATE TABLE login_failures (username TEXT PRIMARY KEY, failures BIGINT NOT NULL, last_failed_at BIGINT NOT NULL,
            next_attempt_at BIGINT NOT NULL);
        CREATE INDEX login_failures_last ON login_failures (last_failed_at);
        CREATE TABLE totp_used (staff_id BIGINT NOT NULL REFERENCES staff(id) ON DELETE CASCADE, step BIGINT NOT NULL,
            used_at BIGINT NOT NULL, PRIMARY KEY (staff_id, step));
        ALTER TABLE staff ADD COLUMN locked_at BIGINT;
        """,
        // 9: at rest (issue 17): an account is found by the HMAC of its number under the secrets key (never the number), and TOTP
        // secrets are sealed with it. The number column is renamed, keeping its UNIQUE index, and SqlStore.SealAtRestAsync
        // replaces every number with its HMAC and seals every TOTP secret in this migration's transaction.
        "ALTER TABLE accounts RENAME COLUMN number TO number_hmac",
        // 10: rollouts (issue 18): a rollout and its machines in order with their steps, each machine's pinned boot target (boot
        // tickets name it instead of the class's current package, so a machine rebooting outside the rollout keeps its release),
        // the newest reboot command per machine (its sequence only grows), and when a relay last reported a revision it caught up to.
        """
        CREATE TABLE rollouts (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, channel TEXT NOT NULL, release_number BIGINT, digest TEXT NOT NULL,
            machine_class TEXT, state TEXT NOT NULL, canary BIGINT NOT NULL, batch BIGINT, max_unavailable BIGINT,
            drain_seconds BIGINT NOT NULL, per_location_min BIGINT NOT NULL, deadline_seconds BIGINT NOT NULL,
            min_serving_percent BIGINT NOT NULL, baseline_serving BIGINT NOT NULL, created_by TEXT NOT NULL, created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL, halt_reason TEXT, lease_owner TEXT, lease_until BIGINT NOT NULL DEFAULT 0);
        CREATE TABLE rollout_machines (rollout_id BIGINT NOT NULL REFERENCES rollouts(id), machine_id TEXT NOT NULL, position BIGINT NOT NULL,
            hostname TEXT, location TEXT, step TEXT NOT NULL, started_at BIGINT, finished_at BIGINT, from_sha256 TEXT NOT NULL,
            booted_sha256 TEXT, reason TEXT, enrolled_seen BIGINT, expect_revision BIGINT, PRIMARY KEY (rollout_id, machine_id));
        CREATE TABLE machine_targets (machine_id TEXT PRIMARY KEY, digest TEXT NOT NULL, rollout_id BIGINT NOT NULL, set_at BIGINT NOT NULL);
        CREATE TABLE reboot_commands (machine_id TEXT PRIMARY KEY, sequence BIGINT NOT NULL, command TEXT NOT NULL, rollout_id BIGINT NOT NULL,
            issued_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, acked_at BIGINT, ack TEXT);
        ALTER TABLE machines ADD COLUMN applied_at BIGINT;
        """,
        // 11: health samples (issue 18, dashboard plots): per minute and location, counts only (HealthSampler); pruned after 48 h.
        """
        CREATE TABLE health_samples (at BIGINT NOT NULL, location TEXT NOT NULL, deployed BIGINT NOT NULL, serving BIGINT NOT NULL,
            peers BIGINT NOT NULL, connected BIGINT NOT NULL, PRIMARY KEY (at, location));
        """,
        // 12: attestation (issue 19): the credential-activation challenge made with an enrollment nonce (the AK's name, the
        // EK's certificate digest, SHA-256 of the secret; consumed at enrollment), and each machine's attestation as its latest
        // enrollment left it: status, the failed step and why, the measured package and release, the issued AK certificate.
        """
        CREATE TABLE attestation_challenges (nonce BYTEA PRIMARY KEY, ak_name BYTEA NOT NULL, ek_sha256 BYTEA NOT NULL,
            secret_sha256 BYTEA NOT NULL, expires_at BIGINT NOT NULL);
        CREATE TABLE machine_attestation (machine_id TEXT PRIMARY KEY REFERENCES machines(id), status TEXT NOT NULL,
            failed_step TEXT, detail TEXT, package_digest TEXT, release_number BIGINT NOT NULL DEFAULT 0, ak_certificate BYTEA,
            ek_sha256 BYTEA, attested_at BIGINT NOT NULL);
        """,
    ];
}

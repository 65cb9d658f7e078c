using System.Data.Common;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using Tabula.Fleet.Api;
using Tabula.Fleet.Security;
using Tabula.Fleet.Storage;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>
/// Issue 17, "Staff credentials and sessions → At rest": account numbers are kept as their HMAC under a key outside the
/// database, TOTP secrets sealed with it, the SQLite files private. The attacks run against a real controller (Kestrel, and
/// SQLite or PostgreSQL: the derived classes at the end), each on its own database: an attacker with a copy of the database
/// reads every text and blob column of every table (and, on SQLite, the files byte for byte) for a number or a TOTP secret,
/// and starts a controller on it without the key. docs/security.md lists them.
/// </summary>
public abstract class AtRestTests
{
    /// <summary>A fresh database, or null when its server is not available (skip outside CI).</summary>
    protected abstract Task<string?> DatabaseAsync();

    protected const string Password = FleetFixture.AdminPassword;


    /// <summary>What the attacker looks for: account numbers and TOTP secrets (raw, base32 as apps show it, hex).</summary>
    protected sealed record Loot(List<string> Numbers, List<byte[]> TotpSecrets);

    // ---- the attacker's reader: a raw connection, no controller code

    protected static DbConnection Open(string database) => database.StartsWith("postgres:", StringComparison.Ordinal)
        ? new Npgsql.NpgsqlConnection(database["postgres:".Length..] + ";Pooling=false")
        : new Microsoft.Data.Sqlite.SqliteConnection("Data Source=" + database["sqlite:".Length..] + ";Pooling=False");

    protected static string SqlitePath(string database) => database["sqlite:".Length..];

    protected static async Task<int> ExecAsync(string database, string sql, params (string Name, object? Value)[] parameters)
    {
        await using var connection = Open(database);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var p = command.CreateParameter();
            p.ParameterName = name;
            p.Value = value ?? DBNull.Value;
            command.Parameters.Add(p);
        }
        return await command.ExecuteNonQueryAsync();
    }

    /// <summary>Every text and blob value of every table, as (table.column, value).</summary>
    protected static async Task<List<(string Where, object Value)>> DumpAsync(string database)
    {
        bool postgres = database.StartsWith("postgres:", StringComparison.Ordinal);
        await using var connection = Open(database);
        await connection.OpenAsync();
        var tables = new List<string>();
        await using (var list = connection.CreateCommand())
        {
            list.CommandText = postgres
                ? "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                : "SELECT name FROM sqlite_master WHERE type = 'table'";
            await using var reader = await list.ExecuteReaderAsync();
            while (await reader.ReadAsync()) tables.Add(reader.GetString(0));
        }
        Assert.Contains("accounts", tables);
        Assert.Contains("staff", tables);
        var values = new List<(string, object)>();
        foreach (string table in tables)
        {
            await using var select = connection.CreateCommand();
            select.CommandText = $"SELECT * FROM \"{table}\"";
            await using var reader = await select.ExecuteReaderAsync();
            while (await reader.ReadAsync())
                for (int i = 0; i < reader.FieldCount; i++)
                    if (!reader.IsDBNull(i) && reader.GetValue(i) is string or byte[])
                        values.Add(($"{table}.{reader.GetName(i)}", reader.GetValue(i)));
        }
        return values;
    }

    /// <summary>
    /// Asserts that no value of the dump (and no byte of <paramref name="files"/>) holds a number or a secret in any form, after
    /// checking the reader on <paramref name="known"/>, something that must be there (an account's HMAC).
    /// </summary>
    protected static void AssertNothingToFind(List<(string Where, object Value)> dump, IEnumerable<string> files, Loot secrets, string known)
    {
        Assert.Contains(dump, v => v.Value is string s && s == known);
        var needles = new List<(string What, byte[] Bytes)>();
        foreach (string number in secrets.Numbers) needles.Add(($"account number {number}", Encoding.ASCII.GetBytes(number)));
        foreach (byte[] secret in secrets.TotpSecrets)
        {
            needles.Add(("a TOTP secret (raw)", secret));
            needles.Add(("a TOTP secret (base32)", Encoding.ASCII.GetBytes(Base32.Encode(secret))));
            needles.Add(("a TOTP secret (base32, lower case)", Encoding.ASCII.GetBytes(Base32.Encode(secret).ToLowerInvariant())));
            needles.Add(("a TOTP secret (hex)", Encoding.ASCII.GetBytes(Convert.ToHexStringLower(secret))));
        }
        foreach (var (where, value) in dump)
        {
            byte[] bytes = value as byte[] ?? Encoding.UTF8.GetBytes((string)value);
            foreach (var (what, needle) in needles)
                Assert.False(bytes.AsSpan().IndexOf(needle) >= 0, $"{what} is in {where}");
        }
        foreach (string file in files.Where(File.Exists))
        {
            byte[] bytes = File.ReadAllBytes(file);
            foreach (var (what, needle) in needles)
                Assert.False(bytes.AsSpan().IndexOf(needle) >= 0, $"{what} is in the file {file}");
        }
    }

    /// <summary>The SQLite database's files (none on PostgreSQL, read through the dump only).</summary>
    protected static IEnumerable<string> Files(string database) => database.StartsWith("sqlite:", StringComparison.Ordinal)
        ? new[] { "", "-wal", "-shm", "-journal" }.Select(s => SqlitePath(database) + s)
        : [];

    // ---- the controller's side

    /// <summary>Enrolls TOTP for the staff member behind <paramref name="token"/> over the API; returns the secret.</summary>
    protected static async Task<byte[]> EnrollTotpAsync(FleetHost host, ManualClock clock, string token)
    {
        var me = host.Client(token);
        var begin = (await (await me.PostAsync("/api/v1/me/totp", null)).Content.ReadFromJsonAsync(FleetJson.Default.TotpBeginResponse))!;
        byte[] secret = Base32.Decode(begin.Secret);
        Assert.Equal(HttpStatusCode.NoContent, (await me.PostAsJsonAsync("/api/v1/me/totp/confirm",
            new CodeRequest(Totp.Code(secret, Totp.StepAt(clock.GetUtcNow()))), FleetJson.Default.CodeRequest)).StatusCode);
        clock.Advance(TimeSpan.FromSeconds(Totp.StepSeconds * 2));
        return secret;
    }

    protected static Task<HttpResponseMessage> LoginAsync(FleetHost host, ManualClock clock, string username, byte[] secret)
    {
        clock.Advance(TimeSpan.FromSeconds(Totp.StepSeconds * 2));   // a step no login used yet
        return host.Client().PostAsJsonAsync("/api/v1/login", new LoginRequest(username, Password, Totp.Code(secret, Totp.StepAt(clock.GetUtcNow()))),
            FleetJson.Default.LoginRequest);
    }

    protected static async Task<HttpStatusCode> CustomerAsync(FleetHost host, string number) =>
        (await host.Client(number, "Token").GetAsync("/app/v1/devices")).StatusCode;

    /// <summary>A controller with an admin who enrolled TOTP and began replacing it (a pending secret), and customers with devices.</summary>
    protected async Task<(FleetHost Host, ManualClock Clock, Loot Secrets, byte[] AdminTotp, List<Model> Accounts)?> PopulatedAsync()
    {
        string? database = await DatabaseAsync();
        if (database is null) return null;
        var clock = new ManualClock();
        var host = await FleetHost.StartAsync(database, null, clock);
        var ct = CancellationToken.None;
        var admin = await host.Staff.CreateStaffAsync("test", "alice", Password, StaffRole.Admin, ct);
        string adminToken = await host.Staff.CreateApiTokenAsync(admin, "t", ct);
        var op = await host.Staff.CreateStaffAsync("test", "oscar", Password, StaffRole.Operator, ct);
        string opToken = await host.Staff.CreateApiTokenAsync(op, "t", ct);
        byte[] adminTotp = await EnrollTotpAsync(host, clock, adminToken);
        byte[] opTotp = await EnrollTotpAsync(host, clock, opToken);
        // A pending secret (re-enrollment begun with a current code, not confirmed): stored too, sealed too.
        var again = await host.Client(opToken).PostAsJsonAsync("/api/v1/me/totp", new CodeRequest(Totp.Code(opTotp, Totp.StepAt(clock.GetUtcNow()))),
            FleetJson.Default.CodeRequest);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        byte[] pending = Base32.Decode((await again.Content.ReadFromJsonAsync(FleetJson.Default.TotpBeginResponse))!.Secret);
        var accounts = new List<Model>();
        for (int i = 0; i < 3; i++)
        {
            var account = await host.CreateAccountAsync(opToken);
            Assert.Equal(HttpStatusCode.Created, (await host.Client(account.Number, "Token").PostAsJsonAsync("/app/v1/devices",
                new AddDeviceRequest(Http.NewWireGuardKey()), FleetJson.Default.AddDeviceRequest)).StatusCode);
            accounts.Add(new Model(account.Number!, account.Id));
        }
        return (host, clock, new Loot([.. accounts.Select(a => a.Number)], [adminTotp, opTotp, pending]), adminTotp, accounts);
    }

    protected sealed record Model(string Number, string Id);

    private static string Hmac(string database, string number)
    {
        using var key = SecretsKey.Load(FleetHost.SecretsKeyFile(database));
        return key.AccountNumberHmac(number);
    }

    [Fact]
    public async Task A_copy_of_the_database_holds_no_account_number_and_no_TOTP_secret_and_everyone_still_logs_in()
    {
        var populated = await PopulatedAsync();
        if (populated is not { } p) return;
        await using var host = p.Host;
        string database = host.Database;

        AssertNothingToFind(await DumpAsync(database), Files(database), p.Secrets, Hmac(database, p.Accounts[0].Number));

        foreach (var account in p.Accounts)
        {
            Assert.Equal(HttpStatusCode.OK, await CustomerAsync(host, account.Number));
            Assert.Equal(account.Id, (await host.Client(account.Number, "Token").GetFromJsonAsync("/app/v1/me", FleetJson.Default.AccountView))!.Id);
        }
        Assert.Equal(HttpStatusCode.Unauthorized, await CustomerAsync(host, Security.Secrets.NewAccountNumber()));
        Assert.Equal(HttpStatusCode.OK, (await LoginAsync(host, p.Clock, "alice", p.AdminTotp)).StatusCode);
        // The sealed column does not open as another row: copied onto another staff member, it is no secret there.
        Assert.Equal(1, await ExecAsync(database, "UPDATE staff SET totp_secret = (SELECT totp_secret FROM staff WHERE username = 'alice') WHERE username = 'oscar'"));
        Assert.Equal(HttpStatusCode.Unauthorized, (await LoginAsync(host, p.Clock, "oscar", p.AdminTotp)).StatusCode);
    }

    [Fact]
    public async Task A_stolen_database_without_its_key_refuses_to_serve_and_with_the_check_removed_logs_nobody_in()
    {
        var populated = await PopulatedAsync();
        if (populated is not { } p) return;
        string database = p.Host.Database;
        await p.Host.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();

        // The thief's controller: the same database, a key of their own.
        string theirs = Path.Combine(Directory.CreateTempSubdirectory("tabula-thief-").FullName, "fleet-secrets.key");
        var refused = await Assert.ThrowsAsync<ArgumentException>(() => FleetHost.StartAsync(database, o => o with { SecretsKeyPath = theirs }, p.Clock));
        Assert.Contains("is not this database's", refused.Message);

        // They remove the check value: the controller starts, but knows none of the numbers and opens no TOTP secret.
        Assert.Equal(1, await ExecAsync(database, "DELETE FROM fleet_settings WHERE name = 'secrets_key_check'"));
        await using var stolen = await FleetHost.StartAsync(database, o => o with { SecretsKeyPath = theirs }, p.Clock);
        foreach (var account in p.Accounts)
            Assert.Equal(HttpStatusCode.Unauthorized, await CustomerAsync(stolen, account.Number));
        Assert.Equal(HttpStatusCode.Unauthorized, (await LoginAsync(stolen, p.Clock, "alice", p.AdminTotp)).StatusCode);
    }

    [Fact]
    public async Task Upgrading_a_database_with_numbers_and_secrets_in_the_clear_replaces_them_and_customers_and_staff_still_log_in()
    {
        string? database = await DatabaseAsync();
        if (database is null) return;
        // The database as the previous release left it: every migration before at rest, a number in the clear, TOTP secrets in the clear.
        SqlDialect dialect = database.StartsWith("postgres:", StringComparison.Ordinal)
            ? new Storage.Postgres.PostgresDialect(database["postgres:".Length..])
            : new Storage.Sqlite.SqliteDialect(SqlitePath(database));
        await using (dialect)
        {
            await ExecAsync(database, "CREATE TABLE schema_version (version BIGINT NOT NULL)");
            for (int v = 0; v < SqlStore.AtRestVersion - 1; v++)
            {
                await ExecAsync(database, dialect.Migrations[v]);
                await ExecAsync(database, "INSERT INTO schema_version (version) VALUES (@v)", ("v", (long)v + 1));
            }
        }
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var numbers = new List<string> { Security.Secrets.NewAccountNumber(), Security.Secrets.NewAccountNumber(), Security.Secrets.NewAccountNumber() };
        foreach (string number in numbers)
            await ExecAsync(database, "INSERT INTO accounts (number, created_at, device_limit) VALUES (@n, @t, 5)", ("n", number), ("t", now));
        byte[] secret = System.Security.Cryptography.RandomNumberGenerator.GetBytes(20), pending = System.Security.Cryptography.RandomNumberGenerator.GetBytes(20);
        await ExecAsync(database, "INSERT INTO staff (username, role, password_hash, totp_secret, totp_enabled, totp_pending, created_at) " +
                                  "VALUES ('alice', 'admin', @p, @s, 1, @q, @t)",
            ("p", PasswordHasher.Hash(Password)), ("s", secret), ("q", pending), ("t", now));
        if (database.StartsWith("sqlite:", StringComparison.Ordinal))
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            File.SetUnixFileMode(SqlitePath(database), (UnixFileMode)0b110_100_100);   // 0644, as an older release left it
        }

        var clock = new ManualClock();
        await using var host = await FleetHost.StartAsync(database, null, clock);
        await using (var connection = Open(database))
        {
            await connection.OpenAsync();
            await using var version = connection.CreateCommand();
            version.CommandText = "SELECT MAX(version) FROM schema_version";
            Assert.True(Convert.ToInt64(await version.ExecuteScalarAsync()) >= SqlStore.AtRestVersion);
        }
        AssertNothingToFind(await DumpAsync(database), Files(database), new Loot(numbers, [secret, pending]), Hmac(database, numbers[0]));
        foreach (string number in numbers)
        {
            Assert.Equal(HttpStatusCode.OK, await CustomerAsync(host, number));
            Assert.Equal(Hmac(database, number)[..16], (await host.Client(number, "Token").GetFromJsonAsync("/app/v1/me", FleetJson.Default.AccountView))!.Id);
        }
        Assert.Equal(HttpStatusCode.OK, (await LoginAsync(host, clock, "alice", secret)).StatusCode);
        if (database.StartsWith("sqlite:", StringComparison.Ordinal))
            foreach (string file in Files(database).Where(File.Exists))
                Assert.Equal("600", Mode(file));
    }

    [Fact]
    public async Task A_key_file_group_or_others_may_read_is_refused_at_start()
    {
        string? database = await DatabaseAsync();
        if (database is null) return;
        string keyFile = FleetHost.SecretsKeyFile(database);
        SecretsKey.LoadOrCreate(keyFile).Dispose();
        string[] keyOption = FleetHost.SecretsKeyPathFor(database) is { } k ? ["--secrets-key", k] : [];
        string[] serve = ["fleet", "serve", "--db", database, "--urls", "http://127.0.0.1:0", .. keyOption,
            .. FleetHost.TicketKeyPathFor(database) is { } t ? new[] { "--ticket-key", t } : []];
        foreach (int mode in new[] { 0b110_100_000, 0b110_000_100, 0b110_110_110 })   // 0640, 0604, 0666
        {
            File.SetUnixFileMode(keyFile, (UnixFileMode)mode);
            var (exit, _, stderr) = await TabulaCli.RunAsync(serve);
            Assert.Equal(2, exit);
            Assert.Contains("is readable or writable by group or others", stderr);
            Assert.Contains(keyFile, stderr);
            (exit, _, stderr) = await TabulaCli.RunAsync(["fleet", "staff", "create", "--db", database, .. keyOption, "--username", "x", "--role", "admin"],
                environment: new Dictionary<string, string> { ["TABULA_FLEET_PASSWORD"] = Password });
            Assert.Equal(2, exit);
            Assert.Contains("is readable or writable by group or others", stderr);
        }
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await using var host = await FleetHost.StartAsync(database);
        Assert.Equal("600", Mode(keyFile));
    }

    /// <summary>The file's permission bits in octal, as stat(1) prints them.</summary>
    protected static string Mode(string file)
    {
        var (exit, output, _) = ProcessRunner.Run("stat", ["-c", "%a", file]);
        Assert.Equal(0, exit);
        return output.Trim();
    }
}

public sealed class SqliteAtRestTests : AtRestTests, IDisposable
{
    private readonly SqliteDatabases databases = new("at-rest");

    protected override Task<string?> DatabaseAsync() => databases.NextAsync();   // one folder per database: the default key file is per folder

    [Fact]
    public async Task The_database_its_WAL_SHM_and_journal_and_the_key_are_created_0600()
    {
        var populated = await PopulatedAsync();
        if (populated is not { } p) return;
        string path = SqlitePath(p.Host.Database);
        Assert.True(File.Exists(path + "-wal") && File.Exists(path + "-shm"), "the controller runs in WAL mode");
        foreach (string file in new[] { path, path + "-wal", path + "-shm", FleetHost.SecretsKeyFile(p.Host.Database) })
            Assert.Equal("600", Mode(file));
        await p.Host.DisposeAsync();

        // A rollback journal (what another tool, or a journal_mode change, writes) gets the database file's mode too.
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False");
        await connection.OpenAsync();
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = "PRAGMA journal_mode=DELETE";
            Assert.Equal("delete", await command.ExecuteScalarAsync());
        }
        await using var tx = await connection.BeginTransactionAsync();
        await using (var command = connection.CreateCommand())
        {
            command.Transaction = (Microsoft.Data.Sqlite.SqliteTransaction)tx;
            command.CommandText = "INSERT INTO fleet_settings (name, value) VALUES ('journal probe', 'x')";
            await command.ExecuteNonQueryAsync();
        }
        Assert.True(File.Exists(path + "-journal"));
        Assert.Equal("600", Mode(path + "-journal"));
        await tx.RollbackAsync();
    }

    public void Dispose() => databases.Dispose();
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresAtRestTests : AtRestTests
{
    protected override Task<string?> DatabaseAsync() => PostgresDatabases.NextAsync();
}

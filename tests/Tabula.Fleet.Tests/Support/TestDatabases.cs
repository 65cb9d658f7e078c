using Tabula.Testing;

namespace Tabula.Fleet.Tests.Support;

/// <summary>
/// Fresh SQLite databases for a test class that starts its own controllers: each in a folder of its own (the controller's
/// default secrets key file sits next to the database, one per folder), all under one temporary folder removed on dispose.
/// </summary>
public sealed class SqliteDatabases(string name) : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory($"tabula-fleet-{name}-").FullName;
    private int count;

    /// <summary>The connection string of a new, empty database.</summary>
    public Task<string?> NextAsync()
    {
        string folder = Path.Combine(root, $"db{Interlocked.Increment(ref count)}");
        Directory.CreateDirectory(folder);
        return Task.FromResult<string?>("sqlite:" + Path.Combine(folder, "fleet.db"));
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(root, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Fresh PostgreSQL databases on the shared test server.</summary>
public static class PostgresDatabases
{
    /// <summary>The connection string of a new database, or null when no PostgreSQL is available (the tests skip outside CI).</summary>
    public static async Task<string?> NextAsync() =>
        await PostgresServer.SharedAsync() is { } server ? await server.CreateDatabaseAsync() : null;
}

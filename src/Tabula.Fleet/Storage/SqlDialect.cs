using System.Data.Common;

namespace Tabula.Fleet.Storage;

/// <summary>
/// What differs between SQLite and PostgreSQL, and nothing else: schema scripts, row locks,
/// transaction start, unique-violation detection, notifications. All queries live in <see cref="SqlStore"/>.
/// </summary>
public abstract class SqlDialect : IAsyncDisposable
{
    public abstract string Kind { get; }

    /// <summary>Schema migrations; index + 1 is the schema version after applying it.</summary>
    public abstract IReadOnlyList<string> Migrations { get; }

    /// <summary>Appended to a SELECT that must lock its rows until commit ("" where writers are serialised anyway).</summary>
    public abstract string ForUpdate { get; }

    public abstract Task<DbConnection> OpenAsync(CancellationToken ct);

    /// <summary>Before the first connection: makes the database's own files private (SQLite: 0600), nothing on a server.</summary>
    public abstract void PrepareFiles();

    /// <summary>
    /// After <paramref name="tables"/> were rewritten in place (an upgrade that replaced secrets with their HMAC or sealed form):
    /// makes sure the old row versions do not stay in the database's files (SQLite: checkpoint and truncate the WAL;
    /// PostgreSQL: VACUUM FULL, which rewrites the tables without their dead tuples).
    /// </summary>
    public abstract Task CompactAfterRewriteAsync(IReadOnlyList<string> tables, CancellationToken ct);

    /// <summary>Begins a write transaction; the returned lease must be disposed after commit or rollback.</summary>
    public abstract Task<(DbTransaction Tx, IDisposable Lease)> BeginWriteAsync(DbConnection connection, CancellationToken ct);

    /// <summary>Begins a read-only transaction over one consistent snapshot.</summary>
    public abstract Task<DbTransaction> BeginReadAsync(DbConnection connection, CancellationToken ct);

    /// <summary>Serialises concurrent schema migrations (several instances starting at once).</summary>
    public abstract Task LockForMigrationAsync(DbConnection connection, DbTransaction tx, CancellationToken ct);

    public abstract bool IsUniqueViolation(Exception e);

    public abstract Task NotifyAsync(DbConnection connection, DbTransaction tx, string payload);

    public abstract Task ListenAsync(Func<string, Task> onNotification, CancellationToken ct);

    /// <summary>A notification outside any transaction (<see cref="IStore.PublishAsync"/>); none where one instance is all there is.</summary>
    public virtual Task PublishAsync(string payload, CancellationToken ct) => Task.CompletedTask;

    public abstract ValueTask DisposeAsync();

    protected sealed class NoLease : IDisposable
    {
        public static readonly NoLease Instance = new();
        public void Dispose() { }
    }
}

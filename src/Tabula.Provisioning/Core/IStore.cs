using Tabula.Packaging;

namespace Tabula.Provisioning.Core;

/// <summary>
/// Where the provisioning server keeps its state. Contract for every implementation:
/// <list type="bullet">
/// <item>objects are immutable and named by the SHA-256 of their bytes; a name never refers to partial bytes;</item>
/// <item>a write is durable when its task completes, and a crash at any point leaves either the old or the new
/// state of each record, never a torn one;</item>
/// <item>"not found" (null) is kept apart from "store failed" (<see cref="ProvisioningError.StoreFailed"/>).</item>
/// </list>
/// </summary>
public interface IStore
{
    /// <summary>Streams <paramref name="content"/> into staging while hashing it. Throws
    /// <see cref="ProvisioningError.TooLarge"/> past <paramref name="maxBytes"/>; the staged bytes are discarded
    /// unless <see cref="CommitAsync"/> is called.</summary>
    Task<StagedObject> StageAsync(Stream content, long maxBytes, CancellationToken ct);

    /// <summary>Makes a staged object durable under its digest (fsync, rename, fsync directory).</summary>
    Task<StoredObject> CommitAsync(StagedObject staged, CancellationToken ct);

    /// <summary>Stores small bytes (descriptors) as an object.</summary>
    Task<StoredObject> PutAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct);

    StoredObject? FindObject(Sha256Digest digest);

    Task<PackageRecord?> FindPackageAsync(Sha256Digest archive, CancellationToken ct);
    Task PutPackageAsync(PackageRecord package, CancellationToken ct);
    Task<IReadOnlyList<PackageRecord>> ListPackagesAsync(CancellationToken ct);

    Task<ChannelRecord?> FindChannelAsync(string channel, CancellationToken ct);
    Task<IReadOnlyList<ChannelRecord>> ListChannelsAsync(CancellationToken ct);

    /// <summary>Points <paramref name="channel"/> at <paramref name="archive"/> and appends the audit entry,
    /// serialised with every other move. <paramref name="guard"/>, when given, sees where the channel points now inside
    /// that serialisation and may refuse the move by throwing (so a check and its move cannot interleave with another
    /// move). Returns the audit entry written.</summary>
    Task<AuditEntry> MoveChannelAsync(string channel, Sha256Digest archive, string actor, DateTimeOffset at,
        CancellationToken ct, Func<ChannelRecord?, CancellationToken, Task>? guard = null, string action = "channel.move", string? reason = null);

    Task<IReadOnlyList<AuditEntry>> ReadAuditAsync(int max, CancellationToken ct);

    Task<IReadOnlyList<MachineGroup>> ListGroupsAsync(CancellationToken ct);

    Task<IReadOnlyList<TokenRecord>> ListTokensAsync(CancellationToken ct);
    Task AddTokenAsync(TokenRecord token, CancellationToken ct);

    /// <summary>Removes the token with <paramref name="id"/> (<see cref="TokenRecord.Id"/>) and audits it as
    /// <c>token.revoke</c>; returns it, or null when there is none.</summary>
    Task<TokenRecord?> RevokeTokenAsync(string id, string actor, string? reason, DateTimeOffset at, CancellationToken ct);

    /// <summary>When each token (by id) was last used, as the server recorded it.</summary>
    Task<IReadOnlyDictionary<string, DateTimeOffset>> ListTokenUsesAsync(CancellationToken ct);

    /// <summary>Records a token's use. The server calls it at most once a minute per token.</summary>
    Task RecordTokenUseAsync(string id, DateTimeOffset at, CancellationToken ct);
}

/// <summary>Bytes written to staging and hashed, not yet visible under any name. Disposing an uncommitted
/// staged object deletes it. Owned by the caller of <see cref="IStore.StageAsync"/>.</summary>
public sealed class StagedObject(string stagingPath, Sha256Digest digest, long length) : IDisposable
{
    public Sha256Digest Digest { get; } = digest;
    public long Length { get; } = length;
    internal string StagingPath { get; } = stagingPath;
    internal bool Committed { get; set; }

    public void Dispose()
    {
        if (!Committed)
            File.Delete(StagingPath);
    }
}

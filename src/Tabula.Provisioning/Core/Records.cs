using System.Text.Json;
using Tabula.Packaging;

namespace Tabula.Provisioning.Core;

/// <summary>An accepted OS package: the archive, the descriptor as served (its <c>os_pkg_url</c> points at the
/// content-addressed archive) and the descriptor exactly as uploaded.</summary>
public sealed record PackageRecord(
    string ArchiveSha256,
    long ArchiveLength,
    string DescriptorSha256,
    string UploadedDescriptorSha256,
    DateTimeOffset PublishedAt,
    string PublishedBy,
    int ValidSignatures,
    int RequiredSignatures)
{
    /// <summary>The release number in the package's signed manifest (its <c>tabula</c> object); 0 when it has none
    /// (packages from before freshness, or from stmgr). Records written before it existed read as 0.</summary>
    public long Release { get; init; }
}

/// <summary>Where a channel points now.</summary>
public sealed record ChannelRecord(string Name, string ArchiveSha256, DateTimeOffset UpdatedAt, string UpdatedBy);

/// <summary>One audited staff action: who (token name), when, what, from, to. Never a client address.</summary>
public sealed record AuditEntry(DateTimeOffset At, string Actor, string Action, string Target, string? From, string To)
{
    /// <summary>Why, where the action needs one (a forced channel move); null otherwise.</summary>
    public string? Reason { get; init; }
}

/// <summary>A staff token as stored: its name and the SHA-256 of the token; the token itself is shown once.</summary>
public sealed record TokenRecord(string Name, string Sha256, DateTimeOffset CreatedAt)
{
    /// <summary>What the token may do (<see cref="StaffRoles"/>): publish packages, move channels, or both. Null (tokens
    /// written before roles existed) means both.</summary>
    public string[]? Roles { get; init; }

    /// <summary>When the token stops working; null: never (tokens written before expiry existed, or created with
    /// <c>--expires never</c>).</summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>How staff name the token to list and revoke it: the first 12 hex digits of its hash (the hash of a 256-bit
    /// random secret; it tells nothing about the token). Not stored.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string Id => Sha256.Length >= 12 ? Sha256[..12] : Sha256;
}

/// <summary>A token as listed: never the secret or its hash.</summary>
public sealed record TokenView(string Id, string Name, string[] Roles, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? LastUsedAt)
{
    public static TokenView From(TokenRecord t, IReadOnlyDictionary<string, DateTimeOffset> uses) =>
        new(t.Id, t.Name, t.Roles ?? StaffRoles.All, t.CreatedAt, t.ExpiresAt, uses.TryGetValue(t.Id, out var used) ? used : null);
}

/// <summary>
/// Staff roles on the provisioning server. Publishing (uploading signed packages) and moving channels (deciding what
/// machines fetch) are separate, so the build pipeline's token cannot repoint a fleet (issue 17).
/// </summary>
public static class StaffRoles
{
    public const string Publish = "publish";
    public const string Channels = "channels";
    public static readonly string[] All = [Publish, Channels];

    public static bool Has(TokenRecord token, string role) => token.Roles is null || token.Roles.Contains(role, StringComparer.Ordinal);
}

/// <summary>
/// A matchbox-style machine group: machines whose labels match every selector entry get the group's channel and
/// host configuration. A group with an empty selector is the explicit default.
/// </summary>
public sealed record MachineGroup(
    string Id,
    IReadOnlyDictionary<string, string> Selector,
    string Channel,
    JsonElement? HostConfig);

/// <summary>A stored object as it lies on disk, for serving with sendfile-style streaming.</summary>
public sealed record StoredObject(Sha256Digest Digest, string PhysicalPath, long Length, DateTimeOffset LastModified);

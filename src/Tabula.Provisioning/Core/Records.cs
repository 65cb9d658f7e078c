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
    int RequiredSignatures);

/// <summary>Where a channel points now.</summary>
public sealed record ChannelRecord(string Name, string ArchiveSha256, DateTimeOffset UpdatedAt, string UpdatedBy);

/// <summary>One audited staff action: who (token name), when, what, from, to. Never a client address.</summary>
public sealed record AuditEntry(DateTimeOffset At, string Actor, string Action, string Target, string? From, string To);

/// <summary>A staff token as stored: its name and the SHA-256 of the token; the token itself is shown once.</summary>
public sealed record TokenRecord(string Name, string Sha256, DateTimeOffset CreatedAt);

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

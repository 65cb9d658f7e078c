using Tabula.Provisioning.Core;

namespace Tabula.Provisioning.Http;

/// <summary>Every error answer: a stable code, a one-line message, and for refused packages the verifier's counts.</summary>
public sealed record ErrorBody(string Error, string Message, PackageVerdict? Verification = null);

public sealed record PublishResponse(
    string ArchiveSha256, long ArchiveLength, string DescriptorSha256, string DescriptorUrl, string ArchiveUrl,
    string? Channel, PackageVerdict Verification);

/// <summary>PUT /v1/channels/{channel}.</summary>
/// <param name="ArchiveSha256">The accepted package the channel should point at.</param>
/// <param name="Force">Move to an older release anyway (audited as channel.force-move; needs <paramref name="Reason"/>).</param>
/// <param name="Reason">Why, kept in the audit entry of a forced move.</param>
public sealed record ChannelMoveRequest(string ArchiveSha256, bool Force = false, string? Reason = null);

public sealed record HealthResponse(string Status);

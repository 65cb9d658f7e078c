using Tabula.Provisioning.Core;

namespace Tabula.Provisioning.Http;

/// <summary>Every error answer: a stable code, a one-line message, and for refused packages the verifier's counts.</summary>
public sealed record ErrorBody(string Error, string Message, PackageVerdict? Verification = null);

public sealed record PublishResponse(
    string ArchiveSha256, long ArchiveLength, string DescriptorSha256, string DescriptorUrl, string ArchiveUrl,
    string? Channel, PackageVerdict Verification);

public sealed record ChannelMoveRequest(string ArchiveSha256);

public sealed record HealthResponse(string Status);

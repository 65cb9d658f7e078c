using Tabula.Packaging;

namespace Tabula.Provisioning.Core;

/// <summary>
/// The transport-free core of the provisioning server (matchbox's <c>server</c> package): publishing, channel
/// moves and per-machine resolution over an <see cref="IStore"/>. The HTTP edge (Http/) and the CLI call it;
/// it never sees a request, a socket or a client address.
///
/// Publishing, in order, so that a crash at any step leaves a consistent store (threat checklist #23):
/// 1. parse the descriptor (bounded, before any archive byte is read);
/// 2. stream the archive into staging while hashing it;
/// 3. verify the signatures over that hash against the trust policy; refused ⇒ staging deleted, nothing stored;
/// 4. commit the archive, then the descriptors (as uploaded, and as served with os_pkg_url rewritten);
/// 5. write the package record; 6. move the channel, audit entry first.
/// </summary>
public sealed class ProvisioningCore(
    IStore store, IPackageVerifier verifier, TimeProvider time, ProvisioningLimits limits, string? publicBaseUrl)
{
    public IStore Store => store;

    public async Task<PublishResult> PublishAsync(ReadOnlyMemory<byte> descriptorJson, Stream archive,
        string? channel, string actor, CancellationToken ct)
    {
        if (channel is not null && !Names.IsValid(channel))
            throw new ProvisioningException(ProvisioningError.InvalidName, "channel " + Names.Rule);
        if (descriptorJson.Length > limits.MaxDescriptorBytes)
            throw new ProvisioningException(ProvisioningError.TooLarge,
                $"descriptor exceeds the limit of {limits.MaxDescriptorBytes} bytes");
        var descriptor = TrustPolicyVerifier.ParseDescriptor(descriptorJson.Span);
        if (descriptor.Count == 0)
            throw new PackageRefusedException(new PackageVerdict(false, 0, 0, verifier.RequiredSignatures, []));

        using var staged = await store.StageAsync(archive, limits.MaxArchiveBytes, ct);
        var verdict = verifier.Verify(descriptorJson.Span, staged.Digest, time.GetUtcNow());
        if (!verdict.Accepted)
            throw new PackageRefusedException(verdict);

        var stored = await store.CommitAsync(staged, ct);
        long release = ReleaseOf(stored.Digest);
        var uploaded = await store.PutAsync(descriptorJson, ct);
        var served = await store.PutAsync(
            descriptor.WithUrl(UrlLayout.OsPkgUrl(stored.Digest, publicBaseUrl)).ToJson(), ct);
        var package = await store.FindPackageAsync(stored.Digest, ct);
        if (package is null || package.DescriptorSha256 != served.Digest.Hex)
        {
            package = new PackageRecord(stored.Digest.Hex, stored.Length, served.Digest.Hex, uploaded.Digest.Hex,
                time.GetUtcNow(), actor, verdict.Valid, verdict.Required) { Release = release };
            await store.PutPackageAsync(package, ct);
        }
        AuditEntry? move = channel is null ? null
            : await store.MoveChannelAsync(channel, stored.Digest, actor, time.GetUtcNow(), ct, NoDowngrade(channel, package, force: false));
        return new PublishResult(package, verdict, move);
    }

    public Task<AuditEntry> MoveChannelAsync(string channel, Sha256Digest archive, string actor, CancellationToken ct) =>
        MoveChannelAsync(channel, archive, actor, force: false, reason: null, ct);

    /// <summary>
    /// Points a channel at an accepted package. A package whose signed release is lower than the channel's current
    /// one is refused (<see cref="ProvisioningError.ChannelDowngrade"/>) unless <paramref name="force"/> is set with a
    /// reason; a forced move is audited as <c>channel.force-move</c> with that reason. Packages without a release
    /// (0) cannot be ordered and are not refused. The fleet's boot-ticket floors are what really stop a rollback; this
    /// stops an operator's slip, and an attacker holding only a publish token.
    /// </summary>
    public async Task<AuditEntry> MoveChannelAsync(string channel, Sha256Digest archive, string actor, bool force, string? reason,
        CancellationToken ct)
    {
        if (!Names.IsValid(channel))
            throw new ProvisioningException(ProvisioningError.InvalidName, "channel " + Names.Rule);
        if (force && string.IsNullOrWhiteSpace(reason))
            throw new ProvisioningException(ProvisioningError.MalformedRequest, "a forced channel move needs a reason (it is audited)");
        if (reason is { Length: > 500 })
            throw new ProvisioningException(ProvisioningError.MalformedRequest, "the reason is longer than 500 characters");
        var target = await store.FindPackageAsync(archive, ct)
                     ?? throw new ProvisioningException(ProvisioningError.NotFound, $"no accepted package has archive {archive}");
        return await store.MoveChannelAsync(channel, archive, actor, time.GetUtcNow(), ct, NoDowngrade(channel, target, force),
            force ? "channel.force-move" : "channel.move", force ? reason : null);
    }

    Func<ChannelRecord?, CancellationToken, Task> NoDowngrade(string channel, PackageRecord target, bool force) => async (current, ct) =>
    {
        if (force || current is null || target.Release == 0 || !Sha256Digest.TryParse(current.ArchiveSha256, out var digest))
            return;
        if (await store.FindPackageAsync(digest, ct) is { Release: > 0 } now && target.Release < now.Release)
            throw new ProvisioningException(ProvisioningError.ChannelDowngrade,
                $"channel {channel} is at release {now.Release}; release {target.Release} is older, refused unless forced with a reason (audited)");
    };

    /// <summary>The release in a stored archive's signed manifest, 0 when it has none or cannot be read as a package.</summary>
    long ReleaseOf(Sha256Digest archive)
    {
        if (store.FindObject(archive) is not { } stored)
            return 0;
        try
        {
            using var file = File.OpenRead(stored.PhysicalPath);
            using var package = OsPackageArchive.Open(file);
            return package.Manifest.Release;
        }
        catch (Exception e) when (e is PackageFormatException or IOException or InvalidDataException)
        {
            return 0;
        }
    }

    public async Task<PackageRecord> ResolveChannelAsync(string channel, CancellationToken ct)
    {
        if (!Names.IsValid(channel))
            throw new ProvisioningException(ProvisioningError.InvalidName, "channel " + Names.Rule);
        var record = await store.FindChannelAsync(channel, ct)
                     ?? throw new ProvisioningException(ProvisioningError.NotFound, $"no channel named {channel}");
        return await ResolvePackageAsync(Digest(record.ArchiveSha256), ct);
    }

    public async Task<PackageRecord> ResolvePackageAsync(Sha256Digest archive, CancellationToken ct) =>
        await store.FindPackageAsync(archive, ct)
        ?? throw new ProvisioningException(ProvisioningError.NotFound, $"no package with archive {archive}");

    /// <summary>The group selected for a machine and the package its channel points at.</summary>
    public async Task<(MachineGroup Group, PackageRecord Package)> ResolveMachineAsync(
        IReadOnlyDictionary<string, string> labels, CancellationToken ct)
    {
        var group = MachineGroups.Select(await store.ListGroupsAsync(ct), labels);
        return (group, await ResolveChannelAsync(group.Channel, ct));
    }

    public async Task<MachineGroup> SelectGroupAsync(IReadOnlyDictionary<string, string> labels, CancellationToken ct) =>
        MachineGroups.Select(await store.ListGroupsAsync(ct), labels);

    public StoredObject Object(string hex) =>
        store.FindObject(Digest(hex))
        ?? throw new ProvisioningException(ProvisioningError.StoreFailed, $"object {hex} is referenced but missing");

    static Sha256Digest Digest(string hex) =>
        Sha256Digest.TryParse(hex, out var d)
            ? d
            : throw new ProvisioningException(ProvisioningError.StoreFailed, "a record holds a malformed digest");
}

public sealed record PublishResult(PackageRecord Package, PackageVerdict Verdict, AuditEntry? ChannelMove);

using Tabula.Fleet.Protocol;
using Tabula.Fleet.Storage;

namespace Tabula.Fleet.Core;

/// <summary>
/// Releases and floors per machine class (freshness, issue 16; docs/fleet.md "Freshness"): which package a class boots now,
/// the lowest release it may boot, and what each machine booted. Staff changes are audited with their reason in the same
/// transaction. Floors only go up unless forced; a current release below the floor, or a floor above the current release,
/// would leave the class unable to boot and is refused unless forced.
/// </summary>
public sealed class ReleaseService(IStore store, MachineEvents machineEvents)
{
    /// <summary>A machine's release as the controller sees it (for views): from the release staff named for its package if
    /// any, else the release its relay reported; its class's floor and whether it sits below it.</summary>
    public sealed record MachineRelease(long? Release, string? MachineClass, long? Floor, bool BelowFloor, MachineFreshness? Freshness);

    public async Task<ReleaseClass> SetCurrentAsync(string actor, string machineClass, string digest, long release, string? reason, CancellationToken ct)
    {
        ValidateClass(machineClass);
        if (!Enrollment.IsDigest(digest))
            throw new FleetException(FleetError.InvalidInput, "a package digest is 64 lowercase hex characters (SHA-256)");
        ValidateRelease(release, "release");
        ValidateReason(reason, required: true);
        var updated = await store.WriteAsync(async tx =>
        {
            var current = await tx.GetReleaseClassAsync(machineClass, forUpdate: true);
            long floor = current?.MinRelease ?? 0;
            if (release < floor)
                throw new FleetException(FleetError.IllegalTransition,
                    $"release {release} is below the {machineClass} floor {floor}: stboot would refuse it (raise a newer release)");
            if (await tx.GetPackageReleaseAsync(digest) is { } known)
            {
                if (known.MachineClass != machineClass || known.Release != release)
                    throw new FleetException(FleetError.Duplicate,
                        $"package {digest[..12]}… is release {known.Release} of class {known.MachineClass}; a package's release and class are in its signed manifest");
            }
            else await tx.InsertPackageReleaseAsync(new PackageRelease(digest, machineClass, release, tx.Now, actor));
            var next = new ReleaseClass(machineClass, digest, release, floor, tx.Now);
            await tx.SaveReleaseClassAsync(next);
            await tx.AuditAsync(actor, "release.set-current", machineClass, reason,
                $"release {release} digest {digest}" + (current?.CurrentDigest is { } was ? $" (was release {current.CurrentRelease} digest {was})" : ""));
            await tx.NotifyAsync("machines");
            return next;
        }, ct);
        machineEvents.Changed();
        return updated;
    }

    public async Task<ReleaseClass> SetFloorAsync(string actor, string machineClass, long minRelease, bool force, string? reason, CancellationToken ct)
    {
        ValidateClass(machineClass);
        if (minRelease is < 0 or > FreshnessNames.MaxRelease)
            throw new FleetException(FleetError.InvalidInput, $"min_release is 0..{FreshnessNames.MaxRelease}");
        ValidateReason(reason, required: true);
        var updated = await store.WriteAsync(async tx =>
        {
            var current = await tx.GetReleaseClassAsync(machineClass, forUpdate: true);
            long floor = current?.MinRelease ?? 0;
            if (minRelease < floor && !force)
                throw new FleetException(FleetError.IllegalTransition,
                    $"the {machineClass} floor is {floor}; it only goes up (lowering it needs --force, and is audited)");
            if (current?.CurrentRelease is { } currentRelease && minRelease > currentRelease && !force)
                throw new FleetException(FleetError.IllegalTransition,
                    $"the {machineClass} current release is {currentRelease}: a floor of {minRelease} would leave the class nothing to boot " +
                    "(set a newer current release first, or --force)");
            var next = new ReleaseClass(machineClass, current?.CurrentDigest, current?.CurrentRelease, minRelease, tx.Now);
            await tx.SaveReleaseClassAsync(next);
            string forced = force && (minRelease < floor || next.CurrentRelease is { } r && minRelease > r) ? ", forced" : "";
            await tx.AuditAsync(actor, "release.floor", machineClass, reason, $"min_release {floor} -> {minRelease}{forced}");
            await tx.NotifyAsync("machines");
            return next;
        }, ct);
        machineEvents.Changed();
        return updated;
    }

    /// <summary>Every class, the releases staff named, and each machine's freshness: one snapshot.</summary>
    public Task<(IReadOnlyList<ReleaseClass> Classes, IReadOnlyList<PackageRelease> Releases, IReadOnlyList<MachineFreshness> Freshness,
        IReadOnlyList<Machine> Machines)> SnapshotAsync(CancellationToken ct) =>
        store.ReadAsync(async tx => (await tx.ListReleaseClassesAsync(), await tx.ListPackageReleasesAsync(), await tx.ListMachineFreshnessAsync(),
            await tx.ListMachinesAsync(null)), ct);

    /// <summary>The release view of each of <paramref name="machines"/> (by id).</summary>
    public async Task<IReadOnlyDictionary<string, MachineRelease>> DescribeAsync(IEnumerable<Machine> machines, CancellationToken ct)
    {
        var (classes, releases, freshness) = await store.ReadAsync(async tx =>
            (await tx.ListReleaseClassesAsync(), await tx.ListPackageReleasesAsync(), await tx.ListMachineFreshnessAsync()), ct);
        return Describe(machines, classes, releases, freshness);
    }

    public static Dictionary<string, MachineRelease> Describe(IEnumerable<Machine> machines, IReadOnlyList<ReleaseClass> classes,
        IReadOnlyList<PackageRelease> releases, IReadOnlyList<MachineFreshness> freshness)
    {
        var byClass = classes.ToDictionary(c => c.MachineClass, StringComparer.Ordinal);
        var byDigest = releases.ToDictionary(r => r.Digest, StringComparer.Ordinal);
        var byMachine = freshness.ToDictionary(f => f.MachineId, StringComparer.Ordinal);
        var result = new Dictionary<string, MachineRelease>(StringComparer.Ordinal);
        foreach (var m in machines)
        {
            byDigest.TryGetValue(m.PackageDigest, out var named);
            byMachine.TryGetValue(m.Id, out var f);
            string? machineClass = named?.MachineClass ?? f?.MachineClass;
            long? release = named?.Release ?? (f is { Release: > 0 } ? f.Release : null);
            long? floor = machineClass is not null && byClass.TryGetValue(machineClass, out var c) ? c.MinRelease : null;
            result[m.Id] = new MachineRelease(release, machineClass, floor, floor is > 0 && (release ?? 0) < floor, f);
        }
        return result;
    }

    /// <summary>
    /// Why staff may not deploy this machine without overriding freshness, or null when it may be deployed: its latest
    /// enrollment was unfresh, or it booted below its class floor (raised since, perhaps), or it reported nothing while the
    /// fleet uses freshness (some class has a current release). A fleet that never named a release deploys as before.
    /// </summary>
    public static async Task<string?> WhyNotDeployableAsync(IReleaseTx tx, string machineId, string packageDigest)
    {
        var f = await tx.GetMachineFreshnessAsync(machineId);
        if (f is { Status: FreshnessStatus.Unfresh }) return f.Reason ?? "unfresh";
        var named = await tx.GetPackageReleaseAsync(packageDigest);
        string? machineClass = named?.MachineClass ?? f?.MachineClass;
        long release = named?.Release ?? f?.Release ?? 0;
        if (machineClass is not null && await tx.GetReleaseClassAsync(machineClass, forUpdate: false) is { MinRelease: > 0 } c && release < c.MinRelease)
            return "below-floor";
        if (f is null or { Status: FreshnessStatus.Unreported }
            && (await tx.ListReleaseClassesAsync()).Any(c => c.CurrentDigest is not null))
            return "unreported";
        return null;
    }

    private static void ValidateClass(string machineClass)
    {
        if (!FreshnessNames.IsMachineClass(machineClass))
            throw new FleetException(FleetError.InvalidInput, "a machine class is 1-64 characters of [a-z0-9-]");
    }

    private static void ValidateRelease(long release, string field)
    {
        if (release is < 1 or > FreshnessNames.MaxRelease)
            throw new FleetException(FleetError.InvalidInput, $"{field} is 1..{FreshnessNames.MaxRelease}");
    }

    internal static void ValidateReason(string? reason, bool required)
    {
        if (required && string.IsNullOrWhiteSpace(reason))
            throw new FleetException(FleetError.InvalidInput, "a reason is required (it is kept in the audit trail)");
        if (reason is { Length: > FleetLimits.MaxReasonLength })
            throw new FleetException(FleetError.InvalidInput, $"reasons are at most {FleetLimits.MaxReasonLength} characters");
    }
}

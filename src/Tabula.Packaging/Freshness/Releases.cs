namespace Tabula.Packaging;

/// <summary>
/// The two values freshness is decided on (issue 16): a package's release number, which only goes up, and its machine
/// class. The manifest (<see cref="Manifest.Release"/>), the trust policy (<see cref="FreshnessPolicy"/>), the boot
/// ticket (<see cref="BootTicketPayload"/>) and the ticket request all validate them here, so they agree on one range.
/// </summary>
public static class Releases
{
    /// <summary>Largest release number: 2^53, the largest integer every JSON reader (JavaScript too) holds exactly.</summary>
    public const long MaxRelease = 1L << 53;

    /// <summary>Longest machine class, in characters.</summary>
    public const int MaxMachineClassLength = 64;

    /// <summary>True for a release a package may carry: 1 to <see cref="MaxRelease"/> (0 means "none" and is never written).</summary>
    public static bool IsValidRelease(long release) => release is >= 1 and <= MaxRelease;

    /// <summary>True for a floor: 0 (no floor) to <see cref="MaxRelease"/>.</summary>
    public static bool IsValidFloor(long floor) => floor is >= 0 and <= MaxRelease;

    /// <summary>True for a machine class: 1-64 characters of [a-z0-9-].</summary>
    public static bool IsValidMachineClass(string? machineClass) =>
        machineClass is { Length: >= 1 and <= MaxMachineClassLength }
        && machineClass.All(c => c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-');

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> unless <paramref name="release"/> is 0 or valid.</summary>
    internal static void CheckReleaseOrNone(long release, string name)
    {
        if (release != 0 && !IsValidRelease(release))
            throw new ArgumentOutOfRangeException(name, release, $"a release is 1-{MaxRelease} (0 for none)");
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless <paramref name="machineClass"/> is null or valid.</summary>
    internal static void CheckClassOrNone(string? machineClass, string name)
    {
        if (machineClass is not null && !IsValidMachineClass(machineClass))
            throw new ArgumentException($"a machine class is 1-{MaxMachineClassLength} characters of [a-z0-9-]", name);
    }
}

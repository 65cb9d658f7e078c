namespace Tabula.Fleet;

/// <summary>
/// A machine class's releases (freshness, issue 16): the package stboot is told to boot now (<see cref="CurrentDigest"/>,
/// whose manifest carries <see cref="CurrentRelease"/>) and the lowest release it may boot (<see cref="MinRelease"/>, the
/// floor, which only goes up unless staff force it).
/// </summary>
public sealed record ReleaseClass(string MachineClass, string? CurrentDigest, long? CurrentRelease, long MinRelease, long UpdatedAt);

/// <summary>A package staff named as a class's release (<c>releases set-current</c>): digest → release number.</summary>
public sealed record PackageRelease(string Digest, string MachineClass, long Release, long AddedAt, string AddedBy);

/// <summary>A boot ticket the controller issued; the nonce is kept only as its SHA-256.</summary>
public sealed record IssuedTicket(string MachineId, byte[] NonceSha256, string PackageDigest, string MachineClass, long MinRelease, long IssuedAt);

/// <summary>What the controller concluded from a machine's latest enrollment about its boot's freshness.</summary>
public enum FreshnessStatus
{
    /// <summary>The relay reported no freshness (an agent or stboot from before freshness, or an upstream-style policy).</summary>
    Unreported,
    /// <summary>A ticket this controller issued to this machine for the package it booted, at or above its class floor.</summary>
    Fresh,
    /// <summary>Anything else; <see cref="MachineFreshness.Reason"/> says what.</summary>
    Unfresh,
}

/// <summary>A machine's freshness as of its latest enrollment (<see cref="Reason"/>: a stable kebab-case name, null when fresh).</summary>
public sealed record MachineFreshness(string MachineId, FreshnessStatus Status, string? Reason, long Release, string? MachineClass,
    long? TicketIssuedAt, long ReportedAt);

public static class FreshnessNames
{
    public static string Name(this FreshnessStatus status) => status switch
    {
        FreshnessStatus.Unreported => "unreported",
        FreshnessStatus.Fresh => "fresh",
        FreshnessStatus.Unfresh => "unfresh",
        _ => throw new ArgumentOutOfRangeException(nameof(status)),
    };

    public static FreshnessStatus ParseStatus(string text) => text switch
    {
        "fresh" => FreshnessStatus.Fresh,
        "unfresh" => FreshnessStatus.Unfresh,
        _ => FreshnessStatus.Unreported,
    };

    /// <summary>Machine classes: 1-64 characters of [a-z0-9-] (the manifest's and trust policy's rule).</summary>
    public static bool IsMachineClass(string? text) =>
        text is { Length: > 0 and <= 64 } && text.All(c => c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-');

    /// <summary>Release numbers: 1..2^53 (exact in every JSON reader).</summary>
    public const long MaxRelease = 1L << 53;
}

namespace Tabula.Fleet.Api;

// Freshness (issue 16): /api/v1/releases and /api/v1/ticket-key. Listed in FleetJson (Contracts.cs).

/// <summary>POST /api/v1/releases/{class}/current: the package the class boots now and the release in its manifest.</summary>
public sealed record SetCurrentReleaseRequest(string? Digest, long? Release, string? Reason);

/// <summary>POST /api/v1/releases/{class}/floor: the lowest release the class may boot; <c>force</c> allows lowering it.</summary>
public sealed record ReleaseFloorRequest(long? MinRelease, bool? Force, string? Reason);

/// <summary>A machine in a class: its release and whether it sits below the floor.</summary>
public sealed record ReleaseMachineView(string Id, string State, string? Hostname, string PackageDigest, long? Release, bool BelowFloor,
    string Freshness, string? FreshnessReason);

/// <summary>One machine class: its current package and release, its floor, and its machines.</summary>
public sealed record ReleaseClassView(string MachineClass, string? CurrentDigest, long? CurrentRelease, long MinRelease, DateTimeOffset UpdatedAt,
    List<ReleaseMachineView> Machines)
{
    public int BelowFloor => Machines.Count(m => m.BelowFloor);
}

namespace Tabula.Fleet.Storage;

/// <summary>
/// Freshness (issue 16): release classes (current package, floor), the releases staff named, issued boot tickets, each
/// machine's reported freshness, and fleet-wide settings (the ticket key's public half).
/// </summary>
public interface IReleaseTx : IMachineRowTx
{
    /// <summary>A class row; with <paramref name="forUpdate"/> it stays locked until commit (floors only go up).</summary>
    Task<ReleaseClass?> GetReleaseClassAsync(string machineClass, bool forUpdate);
    Task SaveReleaseClassAsync(ReleaseClass releaseClass);
    Task<IReadOnlyList<ReleaseClass>> ListReleaseClassesAsync();
    Task<PackageRelease?> GetPackageReleaseAsync(string digest);
    Task InsertPackageReleaseAsync(PackageRelease release);
    Task<IReadOnlyList<PackageRelease>> ListPackageReleasesAsync();
    Task InsertTicketAsync(IssuedTicket ticket);
    /// <summary>The issue time of the ticket for this machine, nonce hash and package, or null if none was issued.</summary>
    Task<long?> FindTicketAsync(string machineId, byte[] nonceSha256, string packageDigest);
    Task<long> CountTicketsAsync(string machineId);
    /// <summary>
    /// Deletes ticket records issued before <paramref name="issuedBefore"/> (unix ms) except the newest of each machine (its
    /// running boot may still enroll with it) and the one each machine's recorded freshness names (a re-enrollment reports
    /// it again). Returns how many went.
    /// </summary>
    Task<int> PruneTicketsAsync(long issuedBefore);
    Task<MachineFreshness?> GetMachineFreshnessAsync(string machineId);
    Task SaveMachineFreshnessAsync(MachineFreshness freshness);
    Task<IReadOnlyList<MachineFreshness>> ListMachineFreshnessAsync();
    Task<string?> GetSettingAsync(string name);
    /// <summary>Stores the setting if it has none yet; returns the value now stored (the given one or the earlier one).</summary>
    Task<string> SetSettingIfAbsentAsync(string name, string value);
}

namespace Tabula.Fleet.Storage;

/// <summary>
/// The dashboard's time series (issue 18, schema 11): per sample time and location, deployed and serving relays, peers
/// and connected peers. Counts and public location codes only: never a customer key, address or DNS name.
/// </summary>
public interface IHealthSampleTx
{
    /// <summary>Stores the samples of one time; a time another instance sampled already stays as it was.</summary>
    Task InsertHealthSamplesAsync(IReadOnlyList<HealthSample> samples);

    /// <summary>Fleet totals per sample time after <paramref name="after"/> (unix ms), oldest first; one location's only when given.</summary>
    Task<IReadOnlyList<HealthPoint>> HealthPointsAsync(long after, string? location);

    /// <summary>Deletes samples taken before <paramref name="before"/> (unix ms); returns how many went.</summary>
    Task<int> PruneHealthSamplesAsync(long before);
}

using Tabula.Fleet.Storage;

namespace Tabula.Fleet.Core;

/// <summary>
/// The dashboard's plots (issue 18; docs/fleet.md "Dashboard"): once per <see cref="FleetLimits.HealthSampleInterval"/> the
/// background loop sums this instance's latest health reports per location into the database (schema 11), one row per
/// location and sample time, and prunes what is older than <see cref="FleetLimits.HealthSampleRetention"/>. Counts and the
/// relay list's public location codes only: no customer key, address or DNS name, no relay key or address either.
/// </summary>
public sealed class HealthSampler(IStore store, RelayHealthBoard board, TimeProvider time)
{
    /// <summary>Takes the sample of the current interval (a time already sampled, by this or another instance, stays as it was).</summary>
    public async Task<IReadOnlyList<HealthSample>> SampleAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        long interval = (long)FleetLimits.HealthSampleInterval.TotalMilliseconds;
        long at = now.ToUnixTimeMilliseconds() / interval * interval;
        var machines = await store.ReadAsync(tx => tx.ListMachinesAsync(MachineState.Deployed), ct);
        var samples = Sum(machines, board, now, at);
        await store.WriteAsync(async tx =>
        {
            await tx.InsertHealthSamplesAsync(samples);
            return await tx.PruneHealthSamplesAsync(at - (long)FleetLimits.HealthSampleRetention.TotalMilliseconds);
        }, ct);
        return samples;
    }

    /// <summary>Per location of the deployed machines: how many, how many serve, their peers and connected peers.</summary>
    internal static List<HealthSample> Sum(IEnumerable<Machine> deployed, RelayHealthBoard board, DateTimeOffset now, long at) =>
        [.. deployed.Where(m => m.State == MachineState.Deployed && m.Placement is not null)
            .GroupBy(m => Location(m.Placement!), StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g =>
            {
                var serving = g.Select(m => board.Get(m.Id)).OfType<RelayHealthBoard.Entry>()
                    .Where(e => now - e.ReportedAt < FleetLimits.ServingReportAge).ToList();
                return new HealthSample(at, g.Key, g.Count(), serving.Count, serving.Sum(e => e.Peers),
                    serving.Sum(e => e.Agent.HandshakesLast3Minutes ?? 0));
            })];

    /// <summary>The relay list's location code ("se-got").</summary>
    public static string Location(RelayPlacement p) => $"{p.CountryCode}-{p.CityCode}";

    /// <summary>Fleet totals (or one location's) per sample time after <paramref name="after"/>, oldest first.</summary>
    public Task<IReadOnlyList<HealthPoint>> PointsAsync(DateTimeOffset after, string? location, CancellationToken ct) =>
        store.ReadAsync(tx => tx.HealthPointsAsync(after.ToUnixTimeMilliseconds(), location), ct);
}

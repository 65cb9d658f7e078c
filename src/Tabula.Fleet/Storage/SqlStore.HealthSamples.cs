namespace Tabula.Fleet.Storage;

public sealed partial class SqlStore
{
    private sealed partial class Tx
    {
        public async Task InsertHealthSamplesAsync(IReadOnlyList<HealthSample> samples)
        {
            foreach (var s in samples)
                await Exec("INSERT INTO health_samples (at, location, deployed, serving, peers, connected) VALUES (@at, @l, @d, @s, @p, @c) " +
                           "ON CONFLICT (at, location) DO NOTHING",
                    ("at", s.At), ("l", s.Location), ("d", (long)s.Deployed), ("s", (long)s.Serving), ("p", s.Peers), ("c", s.Connected));
        }

        public async Task<IReadOnlyList<HealthPoint>> HealthPointsAsync(long after, string? location) =>
            await Query("SELECT at, SUM(deployed), SUM(serving), SUM(peers), SUM(connected), COUNT(*) FROM health_samples WHERE at > @a" +
                        (location is null ? "" : " AND location = @l") + " GROUP BY at ORDER BY at",
                r => new HealthPoint(L(r, 0), L(r, 1), L(r, 2), L(r, 3), L(r, 4), L(r, 5)),
                location is null ? [("a", after)] : [("a", after), ("l", location)]);

        public Task<int> PruneHealthSamplesAsync(long before) => Exec("DELETE FROM health_samples WHERE at < @b", ("b", before));
    }
}

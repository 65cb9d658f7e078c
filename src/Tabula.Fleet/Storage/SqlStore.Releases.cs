using System.Data.Common;

namespace Tabula.Fleet.Storage;

public sealed partial class SqlStore
{
    private sealed partial class Tx
    {
        private static long? NL(DbDataReader r, int i) => r.IsDBNull(i) ? null : L(r, i);

        private static ReleaseClass MapClass(DbDataReader r) => new(r.GetString(0), S(r, 1), NL(r, 2), L(r, 3), L(r, 4));

        public async Task<ReleaseClass?> GetReleaseClassAsync(string machineClass, bool lockRow) =>
            (await Query("SELECT machine_class, current_digest, current_release, min_release, updated_at FROM release_classes WHERE machine_class = @c"
                         + (lockRow ? forUpdate : ""), MapClass, ("c", machineClass))).FirstOrDefault();

        public Task SaveReleaseClassAsync(ReleaseClass c) => Exec(
            "INSERT INTO release_classes (machine_class, current_digest, current_release, min_release, updated_at) VALUES (@c, @d, @r, @m, @now) " +
            "ON CONFLICT (machine_class) DO UPDATE SET current_digest = @d, current_release = @r, min_release = @m, updated_at = @now",
            ("c", c.MachineClass), ("d", c.CurrentDigest), ("r", c.CurrentRelease), ("m", c.MinRelease), ("now", Now));

        public async Task<IReadOnlyList<ReleaseClass>> ListReleaseClassesAsync() =>
            await Query("SELECT machine_class, current_digest, current_release, min_release, updated_at FROM release_classes ORDER BY machine_class", MapClass);

        private static PackageRelease MapRelease(DbDataReader r) => new(r.GetString(0), r.GetString(1), L(r, 2), L(r, 3), r.GetString(4));

        public async Task<PackageRelease?> GetPackageReleaseAsync(string digest) =>
            (await Query("SELECT digest, machine_class, release_number, added_at, added_by FROM releases WHERE digest = @d", MapRelease, ("d", digest)))
            .FirstOrDefault();

        public Task InsertPackageReleaseAsync(PackageRelease p) => Exec(
            "INSERT INTO releases (digest, machine_class, release_number, added_at, added_by) VALUES (@d, @c, @r, @now, @by)",
            ("d", p.Digest), ("c", p.MachineClass), ("r", p.Release), ("now", Now), ("by", p.AddedBy));

        public async Task<IReadOnlyList<PackageRelease>> ListPackageReleasesAsync() =>
            await Query("SELECT digest, machine_class, release_number, added_at, added_by FROM releases ORDER BY machine_class, release_number", MapRelease);

        public Task InsertTicketAsync(IssuedTicket t) => Exec(
            "INSERT INTO boot_tickets (machine_id, nonce_sha256, package_digest, machine_class, min_release, issued_at) VALUES (@m, @n, @d, @c, @f, @at)",
            ("m", t.MachineId), ("n", t.NonceSha256), ("d", t.PackageDigest), ("c", t.MachineClass), ("f", t.MinRelease), ("at", t.IssuedAt));

        public async Task<long?> FindTicketAsync(string machineId, byte[] nonceSha256, string packageDigest) =>
            (await Query("SELECT MAX(issued_at) FROM boot_tickets WHERE machine_id = @m AND nonce_sha256 = @n AND package_digest = @d",
                r => NL(r, 0), ("m", machineId), ("n", nonceSha256), ("d", packageDigest))).FirstOrDefault();

        public Task<long> CountTicketsAsync(string machineId) => Scalar("SELECT COUNT(*) FROM boot_tickets WHERE machine_id = @m", ("m", machineId));

        // One statement in both dialects; no index on issued_at (no schema change): it runs every 10 minutes, not per request.
        public Task<int> PruneTicketsAsync(long issuedBefore) => Exec(
            "DELETE FROM boot_tickets WHERE issued_at < @before " +
            "AND id NOT IN (SELECT MAX(id) FROM boot_tickets GROUP BY machine_id) " +
            "AND NOT EXISTS (SELECT 1 FROM machine_freshness f WHERE f.machine_id = boot_tickets.machine_id AND f.ticket_issued_at = boot_tickets.issued_at)",
            ("before", issuedBefore));

        private const string FreshnessColumns = "machine_id, status, reason, release_number, machine_class, ticket_issued_at, reported_at";

        private static MachineFreshness MapFreshness(DbDataReader r) =>
            new(r.GetString(0), FreshnessNames.ParseStatus(r.GetString(1)), S(r, 2), L(r, 3), S(r, 4), NL(r, 5), L(r, 6));

        public async Task<MachineFreshness?> GetMachineFreshnessAsync(string machineId) =>
            (await Query($"SELECT {FreshnessColumns} FROM machine_freshness WHERE machine_id = @m", MapFreshness, ("m", machineId))).FirstOrDefault();

        public Task SaveMachineFreshnessAsync(MachineFreshness f) => Exec(
            $"INSERT INTO machine_freshness ({FreshnessColumns}) VALUES (@m, @s, @r, @rel, @c, @t, @at) " +
            "ON CONFLICT (machine_id) DO UPDATE SET status = @s, reason = @r, release_number = @rel, machine_class = @c, ticket_issued_at = @t, reported_at = @at",
            ("m", f.MachineId), ("s", f.Status.Name()), ("r", f.Reason), ("rel", f.Release), ("c", f.MachineClass), ("t", f.TicketIssuedAt),
            ("at", f.ReportedAt));

        public async Task<IReadOnlyList<MachineFreshness>> ListMachineFreshnessAsync() =>
            await Query($"SELECT {FreshnessColumns} FROM machine_freshness", MapFreshness);

        public async Task<string?> GetSettingAsync(string name) =>
            (await Query("SELECT value FROM fleet_settings WHERE name = @n", r => r.GetString(0), ("n", name))).FirstOrDefault();

        public async Task<string> SetSettingIfAbsentAsync(string name, string value)
        {
            await Exec("INSERT INTO fleet_settings (name, value) VALUES (@n, @v) ON CONFLICT (name) DO NOTHING", ("n", name), ("v", value));
            return await GetSettingAsync(name) ?? value;
        }
    }
}

using System.Net.Http.Json;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>GET /api/v1/audit searched by actor, action and target and paged on the server (issue 18), on both databases.</summary>
public abstract class AuditSearchTests(FleetFixture fleet)
{
    [Fact]
    public async Task Audit_is_searched_by_substring_in_any_case_and_paged_by_id_without_gaps_or_repeats()
    {
        if (!fleet.Available) return;   // PostgresServer decides: skipped on a laptop without it, required under CI
        var admin = fleet.Host.Client(fleet.AdminToken);
        string tag = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
        // Seven entries whose target carries the tag, plus LIKE's own characters in a filter (matched literally).
        for (int i = 0; i < 7; i++)
            await fleet.Host.Store.WriteAsync(async tx => { await tx.AuditAsync("auditor", "test.page", $"t-{tag}-{i}", "r", null); return 0; }, default);
        await fleet.Host.Store.WriteAsync(async tx => { await tx.AuditAsync("auditor", "test.like", $"x%_!{tag}", null, null); return 0; }, default);

        var seen = new List<long>();
        long? before = null;
        for (int page = 0; page < 4; page++)
        {
            var got = await admin.GetFromJsonAsync($"/api/v1/audit?limit=3&action=TEST.PAGE&target={tag}" + (before is { } b ? $"&before={b}" : ""),
                FleetJson.Default.ListAuditView);
            seen.AddRange(got!.Select(a => a.Id));
            if (got!.Count < 3) break;
            before = got[^1].Id;
        }
        Assert.Equal(7, seen.Count);
        Assert.Equal(seen.OrderByDescending(id => id), seen);   // newest first, no repeats
        Assert.Equal(seen.Distinct().Count(), seen.Count);

        var like = await admin.GetFromJsonAsync($"/api/v1/audit?target={Uri.EscapeDataString("%_!" + tag)}", FleetJson.Default.ListAuditView);
        Assert.Equal("test.like", Assert.Single(like!).Action);
        Assert.Empty((await admin.GetFromJsonAsync($"/api/v1/audit?target={Uri.EscapeDataString("%" + tag + "%")}", FleetJson.Default.ListAuditView))!);
        Assert.Equal(8, (await admin.GetFromJsonAsync($"/api/v1/audit?actor=AUDITOR&target={tag}", FleetJson.Default.ListAuditView))!.Count);

        // Admins only, as before; an overlong filter is a 400.
        Assert.Equal(403, (int)(await fleet.Host.Client(fleet.ViewerToken).GetAsync("/api/v1/audit")).StatusCode);
        Assert.Equal(400, (int)(await admin.GetAsync("/api/v1/audit?actor=" + new string('a', 201))).StatusCode);
    }
}

public sealed class SqliteAuditSearchTests(SqliteFleetFixture fleet) : AuditSearchTests(fleet), IClassFixture<SqliteFleetFixture>;

[Collection(PostgresCollection.Name)]
public sealed class PostgresAuditSearchTests(PostgresFleetFixture fleet) : AuditSearchTests(fleet), IClassFixture<PostgresFleetFixture>;

using System.Net.Http.Json;
using Microsoft.Playwright;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>The dashboard's freshness columns and the override (issue 16), in Debian's Chromium (<see cref="DashboardBrowser"/>).</summary>
public sealed class FreshnessDashboardTests(SqliteFleetFixture fleet) : IClassFixture<SqliteFleetFixture>
{
    [Fact]
    public async Task Fresh_dashboard_shows_release_floor_below_floor_and_deploys_an_unfresh_relay_only_through_the_override()
    {
        var admin = fleet.Host.Client(fleet.AdminToken);
        string d1 = Http.NewDigest(), d2 = Http.NewDigest();
        var relay = new TestRelay();
        await relay.EnrollAsync(fleet.Host.Client(), fleet.EnrollmentToken, d1);
        foreach (var (digest, release) in new[] { (d1, 1L), (d2, 2L) })
            (await admin.PostAsJsonAsync("/api/v1/releases/relay/current", new SetCurrentReleaseRequest(digest, release, "test"),
                FleetJson.Default.SetCurrentReleaseRequest)).EnsureSuccessStatusCode();
        (await admin.PostAsJsonAsync("/api/v1/releases/relay/floor", new ReleaseFloorRequest(2, false, "r1 vulnerable"),
            FleetJson.Default.ReleaseFloorRequest)).EnsureSuccessStatusCode();
        (await fleet.Host.Client(fleet.OperatorToken).PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", new ProvisionRequest(
            "se-got-wg-201", "se", "Sweden", "got", "Gothenburg", "31173", true, "185.213.154.69", null, 51820, 100, true, "rack"),
            FleetJson.Default.ProvisionRequest)).EnsureSuccessStatusCode();

        await using var dashboard = await DashboardBrowser.StartAsync(fleet.Host.Address);
        if (dashboard is null) return;
        var page = dashboard.Page;
        await dashboard.LogInAsync("alice", FleetFixture.AdminPassword, await fleet.AdminTotpCodeAsync());
        await dashboard.TabAsync("machines");

        var row = page.Locator($"#machines-table tr[data-machine='{relay.MachineId}']");
        await Assertions.Expect(row.Locator("td.release")).ToHaveTextAsync("1 relay, floor 2 — BELOW FLOOR");
        await Assertions.Expect(row.Locator("td.freshness")).ToHaveTextAsync("unreported");
        await row.GetByRole(AriaRole.Button, new() { Name = "Deploy…", Exact = true }).ClickAsync();
        await dashboard.AnswerDialogAsync("try it");
        await Assertions.Expect(page.Locator("#action-error")).ToContainTextAsync("not known fresh");

        await row.GetByRole(AriaRole.Button, new() { Name = "Override freshness…" }).ClickAsync();
        await dashboard.AnswerDialogAsync("burn-in on r1 approved by security", destructive: true);
        await Assertions.Expect(row.Locator("td.state")).ToHaveTextAsync("deployed");
        // The releases view lists it below its class's floor.
        await dashboard.TabAsync("releases");
        await Assertions.Expect(page.Locator($"#below-floor tr[data-machine='{relay.MachineId}']")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#release-classes tr[data-class='relay'] td.floor")).ToHaveTextAsync("2");
        dashboard.AssertNoErrors((409, $"/api/v1/machines/{relay.MachineId}/deploy"), (404, "/api/v1/rollouts/latest"));
        var audit = await admin.GetFromJsonAsync("/api/v1/audit?limit=1000", FleetJson.Default.ListAuditView);
        Assert.Contains(audit!, a => a.Action == "machine.override-freshness" && a.Target == relay.MachineId && a.Actor == "alice"
                                     && a.Reason == "burn-in on r1 approved by security" && a.Detail!.StartsWith("below-floor"));
    }
}

using System.Net.Http.Json;
using Microsoft.Playwright;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>The dashboard's freshness columns and the override (issue 16), in Debian's Chromium like <see cref="DashboardTests"/>.</summary>
public sealed class FreshnessDashboardTests(SqliteFleetFixture fleet) : IClassFixture<SqliteFleetFixture>
{
    private const string Chromium = "/usr/bin/chromium";

    [Fact]
    public async Task Fresh_dashboard_shows_release_floor_below_floor_and_deploys_an_unfresh_relay_only_through_the_override()
    {
        if (!File.Exists(Chromium))
        {
            Assert.False(Prerequisites.IsCi, "Chromium is required under CI (scripts/apt-packages: chromium)");
            return;
        }
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

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium, Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync"],
        });
        var page = await browser.NewPageAsync();
        page.SetDefaultTimeout(15_000);
        await page.GotoAsync(new Uri(fleet.Host.Address, "/dashboard").ToString());
        await page.FillAsync("#username", "alice");
        await page.FillAsync("#password", FleetFixture.AdminPassword);
        await page.FillAsync("#totp", await fleet.AdminTotpCodeAsync());
        await page.ClickAsync("#login-button");

        var row = page.Locator($"#state-provisioned tr[data-machine='{relay.MachineId}']");
        await Assertions.Expect(row.Locator("td.release")).ToHaveTextAsync("1 relay, floor 2 — BELOW FLOOR");
        await Assertions.Expect(row.Locator("td.freshness")).ToHaveTextAsync("unreported");
        await row.GetByRole(AriaRole.Button, new() { Name = "Deploy", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator("#action-error")).ToContainTextAsync("not known fresh");

        page.Dialog += async (_, dialog) => await dialog.AcceptAsync("burn-in on r1 approved by security");
        await row.GetByRole(AriaRole.Button, new() { Name = "Override freshness…" }).ClickAsync();
        await Assertions.Expect(page.Locator($"#state-deployed tr[data-machine='{relay.MachineId}']")).ToBeVisibleAsync();
        var audit = await admin.GetFromJsonAsync("/api/v1/audit?limit=1000", FleetJson.Default.ListAuditView);
        Assert.Contains(audit!, a => a.Action == "machine.override-freshness" && a.Target == relay.MachineId && a.Actor == "alice"
                                     && a.Reason == "burn-in on r1 approved by security" && a.Detail!.StartsWith("below-floor"));
    }
}

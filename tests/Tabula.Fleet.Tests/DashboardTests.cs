using System.Net.Http.Json;
using Microsoft.Playwright;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>
/// The staff dashboard in Debian's Chromium (headless, driven by Playwright; no downloaded browser).
/// Without /usr/bin/chromium the test returns early on a laptop and fails under CI.
/// </summary>
public sealed class DashboardTests(SqliteFleetFixture fleet) : IClassFixture<SqliteFleetFixture>
{
    private const string Chromium = "/usr/bin/chromium";

    [Fact]
    public async Task Staff_log_in_see_an_enrolled_machine_appear_live_and_provision_and_deploy_it()
    {
        if (!File.Exists(Chromium))
        {
            Assert.False(Prerequisites.IsCi, "Chromium is required under CI (scripts/apt-packages: chromium)");
            return;
        }
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium, Headless = true,
            // The machine notes: without the background-networking flags Chromium keeps dialing out to a closed network.
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync"],
        });
        var page = await browser.NewPageAsync();
        page.SetDefaultTimeout(15_000);
        await page.GotoAsync(new Uri(fleet.Host.Address, "/dashboard").ToString());

        await page.FillAsync("#username", "alice");
        await page.FillAsync("#password", "wrong password here");
        await page.ClickAsync("#login-button");
        await Assertions.Expect(page.Locator("#login-error")).ToContainTextAsync(Core.StaffService.LoginRefused);
        // alice is an admin without TOTP, which admins need (issue 17): her password gives a session that only enrolls it.
        await page.FillAsync("#password", FleetFixture.AdminPassword);
        await page.ClickAsync("#login-button");
        await Assertions.Expect(page.Locator("#enroll")).ToBeVisibleAsync();
        byte[] secret = Security.Base32.Decode(await page.Locator("#enroll-secret").InnerTextAsync());
        long step = Security.Totp.StepAt(DateTimeOffset.UtcNow);
        await page.FillAsync("#enroll-code", Security.Totp.Code(secret, step));
        await page.ClickAsync("#enroll-button");
        await Assertions.Expect(page.Locator("#login-error")).ToContainTextAsync("TOTP enabled");
        await page.FillAsync("#password", FleetFixture.AdminPassword);
        await page.FillAsync("#totp", Security.Totp.Code(secret, step + 1));
        await page.ClickAsync("#login-button");
        await Assertions.Expect(page.Locator("#status")).ToHaveTextAsync("live");

        // A relay boots and enrolls: the page shows it without a reload (Server-Sent Events).
        var relay = new TestRelay();
        await relay.EnrollAsync(fleet.Host.Client(), fleet.EnrollmentToken, Http.NewDigest());
        var row = page.Locator($"#state-awaiting tr[data-machine='{relay.MachineId}']");
        await Assertions.Expect(row).ToBeVisibleAsync();

        await row.Locator("input[name=hostname]").FillAsync("se-got-wg-101");
        await row.Locator("input[name=country_code]").FillAsync("se");
        await row.Locator("input[name=country]").FillAsync("Sweden");
        await row.Locator("input[name=city_code]").FillAsync("got");
        await row.Locator("input[name=city]").FillAsync("Gothenburg");
        await row.Locator("input[name=provider]").FillAsync("31173");
        await row.Locator("input[name=ipv4_addr_in]").FillAsync("185.213.154.68");
        await row.GetByRole(AriaRole.Button, new() { Name = "Provision" }).ClickAsync();

        var provisioned = page.Locator($"#state-provisioned tr[data-machine='{relay.MachineId}']");
        await Assertions.Expect(provisioned).ToContainTextAsync("se-got-wg-101");
        await provisioned.GetByRole(AriaRole.Button, new() { Name = "Deploy" }).ClickAsync();
        await Assertions.Expect(page.Locator($"#state-deployed tr[data-machine='{relay.MachineId}']")).ToBeVisibleAsync();

        var machine = await fleet.Host.Client(fleet.ViewerToken).GetFromJsonAsync($"/api/v1/machines/{relay.MachineId}", FleetJson.Default.MachineView);
        Assert.Equal("deployed", machine!.State);
        Assert.Null(machine.Placement!.Ipv4AddrOut);   // the form's empty "ipv4 out" field means none: egress on ipv4_addr_in
        var audit = await fleet.Host.Client(fleet.AdminToken).GetFromJsonAsync("/api/v1/audit", FleetJson.Default.ListAuditView);
        Assert.Contains(audit!, a => a.Actor == "alice" && a.Action == "machine.deploy" && a.Target == relay.MachineId);
        var list = await fleet.Host.Client().GetFromJsonAsync("/app/v1/relays", FleetJson.Default.RelayList);
        Assert.Contains(list!.Wireguard.Relays, r => r.Hostname == "se-got-wg-101" && r.Active);
    }
}

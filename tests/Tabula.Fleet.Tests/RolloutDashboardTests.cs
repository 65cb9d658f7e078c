using Microsoft.Playwright;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>
/// The dashboard's rollout view (issue 18) in Chromium: an admin starts a rollout from the page and watches it as relays speaking
/// the real /relay/v1 protocol (<see cref="RolloutRelay"/>) take their reboot commands, pauses and resumes it, and sees it complete:
/// steps per machine, the progress bar and the timeline, live over the event stream, with no console error.
/// </summary>
public sealed class RolloutDashboardTests(SqliteFleetFixture fleet) : IClassFixture<SqliteFleetFixture>
{
    [Fact]
    public async Task Staff_start_a_rollout_watch_each_machine_step_pause_resume_and_see_it_complete()
    {
        var admin = fleet.Host.Client(fleet.AdminToken);
        var (machineClass, old, next) = await RolloutTests.ReleasesAsync(admin);
        var relays = new List<RolloutRelay>();
        for (int i = 0; i < 3; i++)
            relays.Add(await new RolloutRelay(fleet.Host, fleet.EnrollmentToken, fleet.OperatorToken, machineClass).DeployAsync(old));

        await using var dashboard = await DashboardBrowser.StartAsync(fleet.Host.Address);
        if (dashboard is null) return;
        var page = dashboard.Page;
        await dashboard.LogInAsync("alice", FleetFixture.AdminPassword, await fleet.AdminTotpCodeAsync());
        await dashboard.TabAsync("rollout");
        await Assertions.Expect(page.Locator("#rollout-none")).ToBeVisibleAsync();

        await page.ClickAsync("#rollout-start");
        await dashboard.AnswerDialogAsync("roll release 2 out", new Dictionary<string, string>
        {
            ["channel"] = "stable", ["digest"] = next, ["canary"] = "1", ["batch"] = "2", ["drain_seconds"] = "3", ["per_location_min"] = "0",
        }, destructive: true);
        var view = page.Locator("#rollout");
        await Assertions.Expect(view).ToHaveAttributeAsync("data-state", "running");
        await Assertions.Expect(page.Locator("#rollout-machines tbody tr")).ToHaveCountAsync(3);
        var first = await RolloutTests.LatestAsync(admin);
        var canary = relays.Single(r => r.MachineId == first.Machines[0].MachineId);
        var rest = relays.Where(r => r != canary).ToList();
        var canaryRow = page.Locator($"#rollout-machines tr[data-machine='{canary.MachineId}']");
        await Assertions.Expect(canaryRow.Locator("td.step")).ToHaveTextAsync("draining");
        await Assertions.Expect(page.Locator($"#rollout-machines tr[data-machine='{rest[0].MachineId}'] td.step")).ToHaveTextAsync("pending");

        // The canary takes its command, drains, reboots onto the target and serves: the page follows each step live.
        await canary.AcceptCommandAsync();
        await Assertions.Expect(canaryRow.Locator("td.step")).ToHaveTextAsync("rebooting", new() { Timeout = 30_000 });
        await canary.RebootIntoAsync(next);
        await Assertions.Expect(canaryRow.Locator("td.step")).ToHaveTextAsync("done", new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#rollout-progress-text")).ToHaveTextAsync("1 of 3 machines done");

        // Pause while the batch drains; the batch's machines already commanded finish their step, the rollout waits.
        await page.GetByRole(AriaRole.Button, new() { Name = "Pause…" }).ClickAsync();
        await dashboard.AnswerDialogAsync("look at the canary first");
        await Assertions.Expect(view).ToHaveAttributeAsync("data-state", "paused");
        await dashboard.ScreenshotAsync("dashboard-rollout");
        await page.GetByRole(AriaRole.Button, new() { Name = "Resume…" }).ClickAsync();
        await dashboard.AnswerDialogAsync("canary looks good");
        await Assertions.Expect(view).ToHaveAttributeAsync("data-state", "running");

        await Task.WhenAll(rest.Select(r => r.AcceptCommandAsync()));
        await RolloutTests.WaitAsync(admin, v => rest.All(r => RolloutTests.StepOf(v, r) == "rebooting"), "the batch's drain");
        foreach (var r in rest) await r.RebootIntoAsync(next);
        await Assertions.Expect(view).ToHaveAttributeAsync("data-state", "completed", new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#rollout-progress-text")).ToHaveTextAsync("3 of 3 machines done");
        await Assertions.Expect(page.Locator("#rollout-machines td.step")).ToHaveTextAsync(["done", "done", "done"]);
        await Assertions.Expect(page.Locator("#plot-rollout canvas")).ToHaveCountAsync(1);
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Abort…" })).ToHaveCountAsync(0);

        // Each of alice's actions is in the audit with her reason.
        await dashboard.TabAsync("audit");
        await page.FillAsync("#audit-action", "rollout.");
        await page.FillAsync("#audit-actor", "alice");
        await page.ClickAsync("#audit-search button[type=submit]");
        await Assertions.Expect(page.Locator("#audit tbody td.reason")).ToContainTextAsync(["canary looks good", "look at the canary first", "roll release 2 out"]);
        dashboard.AssertNoErrors((404, "/api/v1/rollouts/latest"));
    }
}

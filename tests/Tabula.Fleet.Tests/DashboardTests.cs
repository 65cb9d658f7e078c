using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>
/// The staff dashboard in Debian's Chromium, driven as staff would (issue 18): every test fails on a console error, an
/// uncaught exception or an HTTP error it did not provoke (<see cref="DashboardBrowser"/>).
/// </summary>
public sealed class DashboardTests(SqliteFleetFixture fleet) : IClassFixture<SqliteFleetFixture>
{
    // Not there until the rollout work lands: the view says "No rollouts".
    private const string InjectedReason = "burn-in passed <img src=x onerror=\"window.pwned='yes'\"><script>window.pwned='yes'</script>";

    private static readonly (int, string) NoRolloutsYet = (404, "/api/v1/rollouts/latest");

    [Fact]
    public async Task Staff_log_in_with_TOTP_provision_deploy_watch_health_drain_and_read_the_audit()
    {
        await using var dashboard = await DashboardBrowser.StartAsync(fleet.Host.Address);
        if (dashboard is null) return;
        var page = dashboard.Page;

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
        await dashboard.LogInAsync("alice", FleetFixture.AdminPassword, Security.Totp.Code(secret, step + 1));
        await Assertions.Expect(page.Locator("#tabs button[data-view='staff']")).ToBeVisibleAsync();

        // A relay boots and enrolls: the machines view shows it without a reload (Server-Sent Events).
        await dashboard.TabAsync("machines");
        var relay = new TestRelay();
        string digest = Http.NewDigest();
        await relay.EnrollAsync(fleet.Host.Client(), fleet.EnrollmentToken, digest);
        var row = page.Locator($"#machines-table tr[data-machine='{relay.MachineId}']");
        await Assertions.Expect(row.Locator("td.state")).ToHaveTextAsync("awaiting");
        await Assertions.Expect(row.Locator("td.seen")).ToHaveTextAsync("no report");
        // It sent no TPM evidence (the fleet's policy is optional): staff see that, in the column and where they provision it.
        await Assertions.Expect(row.Locator("td.attestation")).ToHaveTextAsync("absent");

        await row.GetByRole(AriaRole.Button, new() { Name = "Provision…" }).ClickAsync();
        await Assertions.Expect(page.Locator("#action-warning")).ToContainTextAsync("sent no TPM evidence");
        await dashboard.AnswerDialogAsync("racked in Gothenburg", new Dictionary<string, string>
        {
            ["hostname"] = "se-got-wg-101", ["country_code"] = "se", ["country"] = "Sweden", ["city_code"] = "got",
            ["city"] = "Gothenburg", ["provider"] = "31173", ["ipv4_addr_in"] = "185.213.154.68",
        });
        await Assertions.Expect(row.Locator("td.state")).ToHaveTextAsync("provisioned");
        await Assertions.Expect(row.Locator("td.hostname")).ToHaveTextAsync("se-got-wg-101");
        await row.GetByRole(AriaRole.Button, new() { Name = "Deploy…" }).ClickAsync();
        // An attack on the admins who read the audit trail: markup in a reason is shown as text and runs nothing.
        await dashboard.AnswerDialogAsync(InjectedReason);
        await Assertions.Expect(row.Locator("td.state")).ToHaveTextAsync("deployed");

        // Its health report arrives live (a throttled "health" event): seen, peers, connected peers, bytes, uptime, agent.
        var relayClient = fleet.Host.Client(relay.RelayToken);
        (await relayClient.PostAsJsonAsync("/relay/v1/health", new HealthReport(12, 4, 1_500_000, 2_500_000, 0,
            HandshakesLast3Minutes: 9, UptimeSeconds: 3_725, AgentVersion: "0.1"), FleetJson.Default.HealthReport)).EnsureSuccessStatusCode();
        await Assertions.Expect(row.Locator("td.peers")).ToHaveTextAsync("12", new() { Timeout = 20_000 });
        await Assertions.Expect(row.Locator("td.seen")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^seen \\d+ s ago$"));
        await Assertions.Expect(row.Locator("td.handshakes")).ToHaveTextAsync("9");
        await Assertions.Expect(row.Locator("td.bytes")).ToHaveTextAsync("1.5 MB / 2.5 MB");
        await Assertions.Expect(row.Locator("td.uptime")).ToHaveTextAsync("1 h 2 min");
        await Assertions.Expect(row.Locator("td.agent")).ToHaveTextAsync("0.1");

        // More of a fleet: one relay deployed in Frankfurt (through the API) and one just booted, awaiting staff.
        var frankfurt = new TestRelay();
        await frankfurt.EnrollAsync(fleet.Host.Client(), fleet.EnrollmentToken, digest);
        var failing = new TestRelay();
        await failing.EnrollAsync(fleet.Host.Client(), fleet.EnrollmentToken, Http.NewDigest());
        // Their attestation verdicts as the controller stores them (the verification itself: AttestationTests, real swtpm):
        // Frankfurt attested release 3, the new one failed at the quote.
        const string quoteFailure = "the quote's qualifying data is not SHA-256(this nonce ‖ the WireGuard key): an old quote, or one made for another nonce or key";
        await fleet.Host.Store.WriteAsync(async tx =>
        {
            await tx.SaveMachineAttestationAsync(new MachineAttestation(frankfurt.MachineId, AttestationStatus.Attested, null, null, digest, 3, null, null, tx.Now));
            await tx.SaveMachineAttestationAsync(new MachineAttestation(failing.MachineId, AttestationStatus.Failed, Tabula.Attestation.AttestationStep.Quote,
                quoteFailure, null, 0, null, null, tx.Now));
            return 0;
        }, default);
        var op = fleet.Host.Client(fleet.OperatorToken);
        (await op.PostAsJsonAsync($"/api/v1/machines/{frankfurt.MachineId}/provision", new ProvisionRequest("de-fra-wg-001", "de", "Germany", "fra",
            "Frankfurt", "31173", true, "185.213.155.10", null, 51820, 100, true, "rack"), FleetJson.Default.ProvisionRequest)).EnsureSuccessStatusCode();
        (await op.PostAsJsonAsync($"/api/v1/machines/{frankfurt.MachineId}/deploy", new ReasonRequest("go"), FleetJson.Default.ReasonRequest))
            .EnsureSuccessStatusCode();
        (await fleet.Host.Client(frankfurt.RelayToken).PostAsJsonAsync("/relay/v1/health", new HealthReport(40, 20, 9_100_000_000, 7_300_000_000, 0,
            HandshakesLast3Minutes: 31, UptimeSeconds: 200_000, AgentVersion: "0.1"), FleetJson.Default.HealthReport)).EnsureSuccessStatusCode();
        var other = page.Locator($"#machines-table tr[data-machine='{frankfurt.MachineId}']");
        await Assertions.Expect(other.Locator("td.bytes")).ToHaveTextAsync("9.1 GB / 7.3 GB", new() { Timeout = 20_000 });
        await Assertions.Expect(other.Locator("td.uptime")).ToHaveTextAsync("2 d 7 h");
        await Assertions.Expect(other.Locator("td.attestation")).ToHaveTextAsync($"attested r3 ({digest[..12]})");
        await Assertions.Expect(other.Locator("td.attestation")).ToHaveAttributeAsync("title", $"package {digest}, release 3");
        var failed = page.Locator($"#machines-table tr[data-machine='{failing.MachineId}'] td.attestation");
        await Assertions.Expect(failed).ToHaveTextAsync("failed: quote");
        await Assertions.Expect(failed).ToHaveClassAsync("attestation error");
        await Assertions.Expect(failed).ToHaveAttributeAsync("title", quoteFailure);
        await Assertions.Expect(row.Locator("td.attestation")).ToHaveTextAsync("absent");
        // Where staff decide to put it into service, the dialog names the step that failed and why.
        await page.Locator($"#machines-table tr[data-machine='{failing.MachineId}']").GetByRole(AriaRole.Button, new() { Name = "Provision…" }).ClickAsync();
        await Assertions.Expect(page.Locator("#action-warning")).ToHaveTextAsync($"Attestation failed at step quote: {quoteFailure}.");
        await page.ClickAsync("#action-cancel");
        await Assertions.Expect(page.Locator("#action-dialog")).ToBeHiddenAsync();
        await dashboard.ScreenshotAsync("dashboard-machines");

        // Filters by state and location.
        await page.SelectOptionAsync("#filter-state", "awaiting");
        await Assertions.Expect(row).ToHaveCountAsync(0);
        await page.SelectOptionAsync("#filter-state", "deployed");
        await Assertions.Expect(other).ToBeVisibleAsync();
        await page.SelectOptionAsync("#filter-location", "se-got");
        await Assertions.Expect(row).ToBeVisibleAsync();
        await Assertions.Expect(other).ToHaveCountAsync(0);

        // The overview counts it as serving in its location, and plots the last hours: six hours of samples (made up here; the
        // controller takes one a minute; the current one too, so the controller's own sample of this minute is not kept).
        await fleet.Host.Store.WriteAsync(async tx =>
        {
            long minute = 60_000, now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / minute * minute;
            for (int i = 360; i >= 0; i -= 5)
                await tx.InsertHealthSamplesAsync([
                    new HealthSample(now - i * minute, "se-got", 3, i is > 120 and < 150 ? 2 : 3, 900, 400 + 200 * (int)Math.Round(Math.Sin(i / 60.0) + 1)),
                    new HealthSample(now - i * minute, "de-fra", 2, 2, 500, 250 + (360 - i) / 2)]);
            return 0;
        }, default);
        await fleet.Host.App.Services.GetRequiredService<Core.HealthSampler>().SampleAsync(default);
        await dashboard.TabAsync("overview");
        await page.SelectOptionAsync("#plot-hours", "24");
        await Assertions.Expect(page.Locator("#plot-fleet canvas")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#plot-fleet .u-legend")).ToContainTextAsync("connected peers");
        await Assertions.Expect(page.Locator("#locations-table tr[data-location='se-got'] td.serving")).ToHaveTextAsync("1");
        await Assertions.Expect(page.Locator("#locations-table tr[data-location='de-fra'] td.serving")).ToHaveTextAsync("1");
        await Assertions.Expect(page.Locator("#plot-locations canvas")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#overview-summary")).ToContainTextAsync("2 of 2 deployed relays serving, 40 connected peers");
        await dashboard.ScreenshotAsync("dashboard-overview");

        // Releases: the package it runs, not allowed yet (it enrolled awaiting staff); an admin allows it.
        await dashboard.TabAsync("releases");
        var package = page.Locator($"#packages tr[data-digest='{digest}']");
        await Assertions.Expect(package.Locator("td.allowed")).ToHaveTextAsync("no");
        await page.ClickAsync("#allow-package");
        await dashboard.AnswerDialogAsync("release 7, signed by two", new Dictionary<string, string> { ["digest"] = digest });
        await Assertions.Expect(package.Locator("td.allowed")).ToHaveTextAsync("yes");
        await dashboard.ScreenshotAsync("dashboard-releases");

        // Draining is destructive: the dialog asks twice.
        await dashboard.TabAsync("machines");
        await row.GetByRole(AriaRole.Button, new() { Name = "Drain…" }).ClickAsync();
        await page.FillAsync("#action-reason", "cancel me");
        await page.ClickAsync("#action-cancel");
        await Assertions.Expect(row.Locator("td.state")).ToHaveTextAsync("deployed");
        await row.GetByRole(AriaRole.Button, new() { Name = "Drain…" }).ClickAsync();
        await dashboard.AnswerDialogAsync("disk-less maintenance", destructive: true);
        await page.SelectOptionAsync("#filter-state", "");
        await Assertions.Expect(row.Locator("td.state")).ToHaveTextAsync("draining");

        // The audit: each action with alice's reason, searchable by actor, action and target, paged on the server.
        await dashboard.TabAsync("audit");
        await page.FillAsync("#audit-actor", "ALI");
        await page.FillAsync("#audit-action", "machine.");
        await page.FillAsync("#audit-target", relay.MachineId);
        await page.ClickAsync("#audit-search button[type=submit]");
        var entries = page.Locator("#audit tbody tr");
        await Assertions.Expect(entries).ToHaveCountAsync(3);
        await Assertions.Expect(entries.Nth(0).Locator("td.action")).ToHaveTextAsync("machine.drain");
        await Assertions.Expect(entries.Nth(0).Locator("td.reason")).ToHaveTextAsync("disk-less maintenance");
        await Assertions.Expect(entries.Nth(1).Locator("td.reason")).ToHaveTextAsync(InjectedReason);
        await Assertions.Expect(entries.Nth(2).Locator("td.reason")).ToHaveTextAsync("racked in Gothenburg");
        Assert.Equal(0, await page.Locator("#audit img").CountAsync());
        Assert.Null(await page.EvaluateAsync<string?>("() => window.pwned ?? null"));
        await dashboard.ScreenshotAsync("dashboard-audit");

        // Staff: alice's TOTP is enabled, vera (a viewer) has none; tokens are listed without secrets.
        await dashboard.TabAsync("staff");
        await Assertions.Expect(page.Locator("#staff tr[data-username='alice'] td.totp")).ToHaveTextAsync("enabled");
        await Assertions.Expect(page.Locator("#staff tr[data-username='vera'] td.totp")).ToHaveTextAsync("not enrolled");
        await Assertions.Expect(page.Locator("#tokens tbody tr").First).ToBeVisibleAsync();
        await dashboard.ScreenshotAsync("dashboard-staff");
        await dashboard.TabAsync("rollout");
        await dashboard.ScreenshotAsync("dashboard-rollout");

        var audit = await fleet.Host.Client(fleet.AdminToken).GetFromJsonAsync($"/api/v1/audit?target={relay.MachineId}&actor=alice",
            FleetJson.Default.ListAuditView);
        Assert.Equal(["machine.drain", "machine.deploy", "machine.provision"], audit!.Select(a => a.Action));
        var machine = await fleet.Host.Client(fleet.ViewerToken).GetFromJsonAsync($"/api/v1/machines/{relay.MachineId}", FleetJson.Default.MachineView);
        Assert.Null(machine!.Placement!.Ipv4AddrOut);   // the form's empty "IPv4 out" field means none: egress on ipv4_addr_in
        dashboard.AssertNoErrors((401, "/api/v1/login"), NoRolloutsYet);
    }

    [Fact]
    public async Task A_viewer_sees_machines_but_no_action_audit_or_staff()
    {
        var relay = new TestRelay();
        await relay.EnrollAsync(fleet.Host.Client(), fleet.EnrollmentToken, Http.NewDigest());
        await using var dashboard = await DashboardBrowser.StartAsync(fleet.Host.Address);
        if (dashboard is null) return;
        var page = dashboard.Page;
        await dashboard.LogInAsync("vera", FleetFixture.AdminPassword);
        await Assertions.Expect(page.Locator("#tabs button[data-view='audit']")).ToBeHiddenAsync();
        await Assertions.Expect(page.Locator("#tabs button[data-view='staff']")).ToBeHiddenAsync();
        await dashboard.TabAsync("machines");
        var row = page.Locator($"#machines-table tr[data-machine='{relay.MachineId}']");
        await Assertions.Expect(row.Locator("td.state")).ToHaveTextAsync("awaiting");
        await Assertions.Expect(row.Locator("button")).ToHaveCountAsync(0);
        await dashboard.TabAsync("releases");
        await Assertions.Expect(page.Locator("#allow-package")).ToBeHiddenAsync();
        dashboard.AssertNoErrors(NoRolloutsYet);
    }

    /// <summary>
    /// First paint of /dashboard in headless Chromium over loopback (cold page, median of 7), and the size of the JavaScript it
    /// loads; written next to the screenshots when <see cref="DashboardBrowser.ScreenshotsVariable"/> is set (docs/fleet.md).
    /// </summary>
    [Fact]
    public async Task First_paint_and_script_size_are_measured()
    {
        await using var dashboard = await DashboardBrowser.StartAsync(fleet.Host.Address);
        if (dashboard is null) return;
        var runs = new List<(double FirstPaint, double FirstContentfulPaint, double Load)>();
        for (int i = 0; i < 7; i++) runs.Add(await dashboard.PaintTimesAsync(fleet.Host.Address));
        double Median(Func<(double, double, double), double> of) => runs.Select(of).Order().ElementAt(runs.Count / 2);
        using var client = fleet.Host.Client();
        long script = 0;
        foreach (string file in new[] { "dashboard.js", "uPlot.iife.min.js" })
            script += (await client.GetByteArrayAsync("/dashboard/" + file)).Length;
        string report = $"first paint {Median(r => r.Item1):F0} ms, first contentful paint {Median(r => r.Item2):F0} ms, load {Median(r => r.Item3):F0} ms " +
                        $"(median of {runs.Count} cold loads); JavaScript {script} bytes (dashboard.js + uPlot.iife.min.js, uncompressed)";
        Assert.All(runs, r => Assert.True(r.FirstContentfulPaint > 0, report));
        if (Environment.GetEnvironmentVariable(DashboardBrowser.ScreenshotsVariable) is { Length: > 0 } folder)
            await File.WriteAllTextAsync(Path.Combine(folder, "first-paint.txt"), report + "\n");
        dashboard.AssertNoErrors();
    }

    [Fact]
    public async Task The_dashboard_allows_no_inline_script_or_style_and_no_other_origin()
    {
        using var client = fleet.Host.Client();
        foreach (string path in new[] { "/dashboard", "/dashboard/dashboard.js", "/dashboard/dashboard.css", "/dashboard/uPlot.iife.min.js" })
        {
            using var response = await client.GetAsync(path);
            response.EnsureSuccessStatusCode();
            string csp = string.Join(";", response.Headers.GetValues("Content-Security-Policy"));
            Assert.Equal(PublicEndpoints.DashboardCsp, csp);
            Assert.DoesNotContain("unsafe", csp);
            Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        }
        string html = await client.GetStringAsync("/dashboard");
        Assert.DoesNotContain("<script>", html);
        Assert.DoesNotContain("<style", html);
        Assert.DoesNotContain(" style=", html);
        // Only the files the dashboard is made of: no path into the assembly's other resources.
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await client.GetAsync("/dashboard/..%2Fdashboard.html")).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await client.GetAsync("/dashboard/Tabula.Fleet.dll")).StatusCode);
    }
}

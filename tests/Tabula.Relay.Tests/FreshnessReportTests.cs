using System.Net.Http.Json;
using System.Security.Cryptography;
using Tabula.Fleet.Api;
using Tabula.Fleet.Protocol;
using Tabula.Packaging;
using Tabula.Relay.Fleet;
using Tabula.Relay.Serving;
using Tabula.Relay.Tests.Support;

namespace Tabula.Relay.Tests;

/// <summary>The agent reports its boot's freshness at enrollment (issue 16), against the real controller over pinned HTTPS.</summary>
public sealed class FreshnessReportTests
{
    [Fact]
    public async Task Fresh_agent_reports_the_ticket_stboot_handed_over_and_the_controller_records_the_boot_fresh()
    {
        using var files = new RelayFiles();
        await using var fleet = await FleetOverHttps.StartAsync(files);
        using var staff = fleet.Client(fleet.AdminToken);
        (await staff.PostAsJsonAsync("/api/v1/releases/relay/current", new SetCurrentReleaseRequest(files.Digest, 1, "test"),
            FleetJson.Default.SetCurrentReleaseRequest)).EnsureSuccessStatusCode();
        // What stboot did before the kexec: a ticket for this identity and a fresh nonce.
        using var anonymous = fleet.Client();
        using var ticket = await anonymous.PostAsync(BootEndpoints.TicketPath,
            new ByteArrayContent(TicketRequest.Create(files.IdentityKey, RandomNumberGenerator.GetBytes(32), "relay").ToJson()));
        ticket.EnsureSuccessStatusCode();
        var report = new FreshnessReport(true, null, Convert.ToBase64String(await ticket.Content.ReadAsByteArrayAsync()), 1, "relay");

        var console = new StringWriter();
        var log = new RelayLog(TextWriter.Synchronized(console), TimeProvider.System);
        // Enrollment comes before the device is touched: a device name that does not exist is never used here.
        var agent = new RelayAgent(new FleetClient(fleet.Address, fleet.Ca, TimeProvider.System), new UapiRelayDevice("tabula-none0"),
            new RelayAgentOptions(files.IdentityKey, fleet.EnrollmentToken, files.Digest) { Freshness = report, StaffPollInterval = TimeSpan.FromMilliseconds(200) },
            log, TimeProvider.System);
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var running = Task.Run(() => agent.RunAsync(stop.Token));
        for (int i = 0; i < 300 && agent.MachineId is null; i++) await Task.Delay(100);
        Assert.NotNull(agent.MachineId);
        var machine = await staff.GetFromJsonAsync($"/api/v1/machines/{agent.MachineId}", FleetJson.Default.MachineView);
        Assert.Equal(("fresh", 1L, "relay"), (machine!.Freshness, machine.Release, machine.MachineClass));
        await stop.CancelAsync();
        try { await running; } catch (OperationCanceledException) { }
    }
}

using System.Net.Http.Json;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Tabula.Fleet.Api;
using Tabula.Fleet.Core;
using Tabula.Fleet.Tests.Support;
using Tabula.Packaging;

namespace Tabula.Fleet.Tests;

/// <summary>
/// Issued boot tickets do not pile up (issue 16): records older than <see cref="FleetLimits.TicketRetention"/> are pruned,
/// except each machine's newest and the one its recorded freshness names, so a relay that enrolls again within the same
/// boot is still fresh. A real controller on its own database and clock, SQLite and PostgreSQL (the derived classes).
/// </summary>
public abstract class TicketPruningTests
{
    /// <summary>A fresh database, or null when its server is not available (skip outside CI).</summary>
    protected abstract Task<string?> DatabaseAsync();


    [Fact]
    public async Task Ticket_records_past_retention_are_pruned_but_each_machines_newest_and_enrolled_ticket_stay()
    {
        string? database = await DatabaseAsync();
        if (database is null) return;
        var clock = new ManualClock();
        await using var host = await FleetHost.StartAsync(database, null, clock);
        var ct = CancellationToken.None;
        var admin = await host.Staff.CreateApiTokenAsync(
            await host.Staff.CreateStaffAsync("test", "alice", FleetFixture.AdminPassword, StaffRole.Admin, ct), "t", ct);
        string enrollmentToken = await host.Enrollment.CreateEnrollmentTokenAsync("test", "relays", ct);
        using var staff = host.Client(admin);
        using var anonymous = host.Client();
        string digest = Http.NewDigest();
        (await staff.PostAsJsonAsync("/api/v1/releases/relay/current", new SetCurrentReleaseRequest(digest, 1, "test"),
            FleetJson.Default.SetCurrentReleaseRequest)).EnsureSuccessStatusCode();
        var tickets = host.App.Services.GetRequiredService<TicketService>();

        async Task<byte[]> TicketAsync(TestRelay relay)
        {
            clock.Advance(TimeSpan.FromSeconds(1));   // one boot attempt each
            using var response = await anonymous.PostAsync(BootEndpoints.TicketPath,
                new ByteArrayContent(TicketRequest.Create(relay.IdentityPrivate, RandomNumberGenerator.GetBytes(32), "relay").ToJson()));
            response.EnsureSuccessStatusCode();
            return await response.Content.ReadAsByteArrayAsync();
        }
        FreshnessReport Fresh(byte[] ticket) => new(true, null, Convert.ToBase64String(ticket), 1, "relay");
        Task<long> CountAsync(TestRelay relay) => host.Store.ReadAsync(tx => tx.CountTicketsAsync(relay.MachineId), ct);

        // Booted and enrolled: two failed attempts, the one that booted, then one more ticket (a replayed request, say).
        var enrolled = new TestRelay();
        await TicketAsync(enrolled);
        await TicketAsync(enrolled);
        byte[] booted = await TicketAsync(enrolled);
        await enrolled.EnrollAsync(anonymous, enrollmentToken, digest, Fresh(booted));
        await TicketAsync(enrolled);
        // Booted, never enrolled yet (its agent may still): three attempts.
        var pending = new TestRelay();
        for (int i = 0; i < 3; i++) await TicketAsync(pending);
        // Asked a week ago and again now: the recent ones stay whatever they are.
        var recent = new TestRelay();
        await TicketAsync(recent);
        Assert.Equal(0, await tickets.PruneAsync(ct));                       // nothing is past retention yet

        clock.Advance(FleetLimits.TicketRetention);
        await TicketAsync(recent);
        await TicketAsync(recent);
        Assert.Equal((4L, 3L, 3L), (await CountAsync(enrolled), await CountAsync(pending), await CountAsync(recent)));

        // enrolled: the two failed attempts go; the booted one (its freshness names it) and the newest stay.
        // pending: all but the newest go. recent: the week-old one goes, the two recent ones stay.
        Assert.Equal(2 + 2 + 1, await tickets.PruneAsync(ct));
        Assert.Equal((2L, 1L, 2L), (await CountAsync(enrolled), await CountAsync(pending), await CountAsync(recent)));
        Assert.Equal(0, await tickets.PruneAsync(ct));

        // The relay enrolls again within the same boot (a refused relay token, a controller restart): still fresh.
        await enrolled.EnrollAsync(anonymous, enrollmentToken, digest, Fresh(booted));
        var machine = await staff.GetFromJsonAsync($"/api/v1/machines/{enrolled.MachineId}", FleetJson.Default.MachineView);
        Assert.Equal(("fresh", (string?)null), (machine!.Freshness, machine.FreshnessReason));

        // Past retention again, nothing asked since: the enrolled ticket and each machine's newest still stay.
        clock.Advance(FleetLimits.TicketRetention + TimeSpan.FromDays(1));
        Assert.Equal(1, await tickets.PruneAsync(ct));                       // recent's older one
        Assert.Equal((2L, 1L, 1L), (await CountAsync(enrolled), await CountAsync(pending), await CountAsync(recent)));
    }
}

public sealed class SqliteTicketPruningTests : TicketPruningTests, IDisposable
{
    private readonly SqliteDatabases databases = new("tickets");

    protected override Task<string?> DatabaseAsync() => databases.NextAsync();

    public void Dispose() => databases.Dispose();
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresTicketPruningTests : TicketPruningTests
{
    protected override Task<string?> DatabaseAsync() => PostgresDatabases.NextAsync();
}

using System.Net.Http.Json;
using System.Text.Json;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>
/// Freshness at the controller (issue 16): releases and floors per machine class, the ticket key, the deploy gate, against a
/// real Kestrel on SQLite and on PostgreSQL (the derived classes at the end). Each test uses its own machine class; the
/// fixture's fleet names releases, so its machines that report no freshness are gated like a fleet that uses freshness.
/// </summary>
public abstract class FreshnessTests(FleetFixture fleet)
{
    private FleetHost Host => fleet.Host;
    private HttpClient Admin => Host.Client(fleet.AdminToken);
    private HttpClient Operator => Host.Client(fleet.OperatorToken);
    private HttpClient Viewer => Host.Client(fleet.ViewerToken);

    private static string NewClass() => "c-" + Guid.NewGuid().ToString("N")[..10];

    internal static async Task AssertError(HttpResponseMessage response, int status, string code)
    {
        var (actual, error) = await Http.ErrorOf(response);
        Assert.True(status == actual, $"expected {status} {code}, got {actual} {error?.Error}: {error?.Message}");
        Assert.Equal(code, error!.Error);
    }

    private Task<HttpResponseMessage> SetCurrent(string machineClass, string digest, long release, string? reason = "test", HttpClient? as_ = null) =>
        (as_ ?? Admin).PostAsJsonAsync($"/api/v1/releases/{machineClass}/current", new SetCurrentReleaseRequest(digest, release, reason),
            FleetJson.Default.SetCurrentReleaseRequest);

    private Task<HttpResponseMessage> Floor(string machineClass, long min, bool force = false, string? reason = "test") =>
        Admin.PostAsJsonAsync($"/api/v1/releases/{machineClass}/floor", new ReleaseFloorRequest(min, force, reason), FleetJson.Default.ReleaseFloorRequest);

    private static async Task<ReleaseClassView> Ok(HttpResponseMessage response)
    {
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync(FleetJson.Default.ReleaseClassView))!;
    }

    private async Task<List<AuditView>> AuditAsync() => (await Admin.GetFromJsonAsync("/api/v1/audit?limit=1000", FleetJson.Default.ListAuditView))!;

    [Fact]
    public async Task Fresh_floor_only_goes_up_without_force_and_every_change_is_audited_with_its_reason()
    {
        if (!fleet.Available) return;
        string c = NewClass();
        await Ok(await SetCurrent(c, Http.NewDigest(), 5));
        Assert.Equal(3, (await Ok(await Floor(c, 3, reason: "CVE-2026-0001 in release 2"))).MinRelease);
        Assert.Equal(3, (await Ok(await Floor(c, 3))).MinRelease);   // the same floor again is no change, not a refusal
        await AssertError(await Floor(c, 2), 409, "illegal_transition");
        await AssertError(await Floor(c, 6), 409, "illegal_transition");   // above the current release: nothing left to boot
        await AssertError(await Floor(c, 4, reason: null), 400, "invalid_input");
        await AssertError(await Floor(c, -1), 400, "invalid_input");
        Assert.Equal(3, Assert.Single((await Viewer.GetFromJsonAsync("/api/v1/releases", FleetJson.Default.ListReleaseClassView))!,
            v => v.MachineClass == c).MinRelease);

        Assert.Equal(1, (await Ok(await Floor(c, 1, force: true, reason: "release 3 bricks the old NICs"))).MinRelease);
        var audit = (await AuditAsync()).Where(a => a.Target == c && a.Action == "release.floor").ToList();
        Assert.Contains(audit, a => a.Reason == "CVE-2026-0001 in release 2" && a.Detail == "min_release 0 -> 3" && a.Actor == "alice");
        Assert.Contains(audit, a => a.Reason == "release 3 bricks the old NICs" && a.Detail == "min_release 3 -> 1, forced");
        Assert.DoesNotContain(audit, a => a.Detail!.Contains("-> 2"));
    }

    [Fact]
    public async Task Fresh_set_current_refuses_a_release_below_the_floor_a_digest_renamed_and_non_admins()
    {
        if (!fleet.Available) return;
        string c = NewClass(), d1 = Http.NewDigest(), d2 = Http.NewDigest();
        await Ok(await SetCurrent(c, d1, 1));
        await Ok(await SetCurrent(c, d2, 2, reason: "release 2"));
        await Ok(await Floor(c, 2));
        await AssertError(await SetCurrent(c, d1, 1), 409, "illegal_transition");      // a rollback by staff is refused too
        await AssertError(await SetCurrent(c, d2, 3), 409, "duplicate");               // d2 is release 2 for good
        await AssertError(await SetCurrent(NewClass(), d2, 2), 409, "duplicate");      // and of class c
        await AssertError(await SetCurrent(c, Http.NewDigest(), 4, as_: Operator), 403, "forbidden");
        await AssertError(await SetCurrent(c, "ABC", 4), 400, "invalid_input");
        await AssertError(await SetCurrent("Not_A_Class", Http.NewDigest(), 4), 400, "invalid_input");
        await AssertError(await SetCurrent(c, Http.NewDigest(), 0), 400, "invalid_input");
        await AssertError(await SetCurrent(c, Http.NewDigest(), (1L << 53) + 1), 400, "invalid_input");
        var view = Assert.Single((await Viewer.GetFromJsonAsync("/api/v1/releases", FleetJson.Default.ListReleaseClassView))!, v => v.MachineClass == c);
        Assert.Equal((d2, 2L, 2L), (view.CurrentDigest, view.CurrentRelease, view.MinRelease));
        Assert.Contains(await AuditAsync(), a => a.Target == c && a.Action == "release.set-current" && a.Reason == "release 2"
                                                   && a.Detail!.StartsWith($"release 2 digest {d2} (was release 1 digest {d1})"));
    }

    [Fact]
    public async Task Fresh_machines_list_shows_release_floor_and_below_floor_once_the_floor_passes_the_booted_release()
    {
        if (!fleet.Available) return;
        string c = NewClass(), d1 = Http.NewDigest(), d2 = Http.NewDigest();
        var relay = new TestRelay();
        await relay.EnrollAsync(Host.Client(), fleet.EnrollmentToken, d1);
        await Ok(await SetCurrent(c, d1, 1));
        var machine = (await Viewer.GetFromJsonAsync($"/api/v1/machines/{relay.MachineId}", FleetJson.Default.MachineView))!;
        Assert.Equal((1L, c, 0L, false, "unreported"), (machine.Release, machine.MachineClass, machine.Floor, machine.BelowFloor, machine.Freshness));

        await Ok(await SetCurrent(c, d2, 2));
        await Ok(await Floor(c, 2, reason: "release 1 is vulnerable"));
        var listed = Assert.Single((await Viewer.GetFromJsonAsync("/api/v1/machines", FleetJson.Default.ListMachineView))!, m => m.Id == relay.MachineId);
        Assert.Equal((1L, 2L, true), (listed.Release, listed.Floor, listed.BelowFloor));
        var view = Assert.Single((await Viewer.GetFromJsonAsync("/api/v1/releases", FleetJson.Default.ListReleaseClassView))!, v => v.MachineClass == c);
        Assert.Equal(1, view.BelowFloor);
        Assert.True(Assert.Single(view.Machines).BelowFloor);
    }

    [Fact]
    public async Task Fresh_deploy_refuses_a_relay_without_a_fresh_boot_unless_overridden_with_a_reason_and_the_override_is_audited()
    {
        if (!fleet.Available) return;
        await Ok(await SetCurrent(NewClass(), Http.NewDigest(), 1));   // this fleet uses freshness from now on
        var relay = new TestRelay();
        await relay.EnrollAsync(Host.Client(), fleet.EnrollmentToken, Http.NewDigest());   // an agent that reports no freshness
        (await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", new ProvisionRequest(
            "se-got-wg-" + Guid.NewGuid().ToString("N")[..6], "se", "Sweden", "got", "Gothenburg", "31173", true, "185.213.154.1", null, 51820, 100,
            true, "rack"), FleetJson.Default.ProvisionRequest)).EnsureSuccessStatusCode();
        string deploy = $"/api/v1/machines/{relay.MachineId}/deploy";

        await AssertError(await Operator.PostAsJsonAsync(deploy, new ReasonRequest("go"), FleetJson.Default.ReasonRequest), 409, "unfresh");
        await AssertError(await Operator.PostAsJsonAsync(deploy, new ReasonRequest(null, true), FleetJson.Default.ReasonRequest), 400, "invalid_input");
        await AssertError(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/drain", new ReasonRequest("x", true),
            FleetJson.Default.ReasonRequest), 400, "invalid_input");
        Assert.Equal("provisioned", (await Viewer.GetFromJsonAsync($"/api/v1/machines/{relay.MachineId}", FleetJson.Default.MachineView))!.State);

        var deployed = await Operator.PostAsJsonAsync(deploy, new ReasonRequest("ticket service down during DC move", true), FleetJson.Default.ReasonRequest);
        Assert.True(deployed.IsSuccessStatusCode, await deployed.Content.ReadAsStringAsync());
        var audit = await AuditAsync();
        var overridden = Assert.Single(audit, a => a.Target == relay.MachineId && a.Action == "machine.override-freshness");
        Assert.Equal(("oscar", "ticket service down during DC move"), (overridden.Actor, overridden.Reason));
        Assert.StartsWith("unreported", overridden.Detail);
        Assert.Contains(audit, a => a.Target == relay.MachineId && a.Action == "machine.deploy");
    }

    [Fact]
    public async Task Ticket_key_is_made_once_mode_0600_outside_the_database_and_served_as_its_public_pem()
    {
        if (!fleet.Available) return;
        var key = Host.TicketKey;
        Assert.True(File.Exists(key.Path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key.Path));
        Assert.Contains("PRIVATE KEY", await File.ReadAllTextAsync(key.Path));
        string pem = await Viewer.GetStringAsync("/api/v1/ticket-key");
        Assert.Equal(key.PublicKeyPem, pem);
        Assert.Equal(key.PublicKey, Packaging.Pem.ReadSingle(System.Text.Encoding.ASCII.GetBytes(pem), "PUBLIC KEY")[^32..]);
        // Reading it again gives the same key (a restart keeps it).
        using var again = Security.TicketKey.LoadOrCreate(key.Path);
        Assert.Equal(key.PublicKey, again.PublicKey);
        await AssertError(await Host.Client().GetAsync("/api/v1/ticket-key"), 401, "unauthenticated");
    }

    [Fact]
    public async Task Ticket_key_of_another_fleet_or_readable_by_others_stops_the_controller_at_start()
    {
        if (!fleet.Available) return;
        string dir = Directory.CreateTempSubdirectory("tabula-ticket-").FullName;
        try
        {
            string other = Path.Combine(dir, "other.pem");
            using (Security.TicketKey.LoadOrCreate(other)) { }
            var error = await Assert.ThrowsAsync<ArgumentException>(() => FleetServer.CreateAsync(new FleetOptions
            {
                Database = Host.Database, Urls = "http://127.0.0.1:0", TicketKeyPath = other, SecretsKeyPath = FleetHost.SecretsKeyPathFor(Host.Database),
            }));
            Assert.Contains("not this fleet's", error.Message);

            string loose = Path.Combine(dir, "loose.pem");
            File.Copy(Host.TicketKey.Path, loose);
            File.SetUnixFileMode(loose, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
            error = await Assert.ThrowsAsync<ArgumentException>(() => FleetServer.CreateAsync(new FleetOptions
            {
                Database = Host.Database, Urls = "http://127.0.0.1:0", TicketKeyPath = loose,
            }));
            Assert.Contains("chmod 600", error.Message);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}

public sealed class SqliteFreshnessTests(SqliteFleetFixture fleet) : FreshnessTests(fleet), IClassFixture<SqliteFleetFixture>;

[Collection(PostgresCollection.Name)]
public sealed class PostgresFreshnessTests(PostgresFleetFixture fleet) : FreshnessTests(fleet), IClassFixture<PostgresFleetFixture>;

using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;
using Tabula.Packaging;
using Tabula.Packaging.Crypto;

namespace Tabula.Fleet.Tests;

/// <summary>
/// POST /boot/v1/ticket and the freshness a relay reports at enrollment (issue 16), as stboot and the relay agent speak
/// them, against a real Kestrel on SQLite and on PostgreSQL (the derived classes at the end).
/// </summary>
public abstract class TicketTests(FleetFixture fleet)
{
    private FleetHost Host => fleet.Host;
    private HttpClient Admin => Host.Client(fleet.AdminToken);
    private HttpClient Operator => Host.Client(fleet.OperatorToken);
    private HttpClient Viewer => Host.Client(fleet.ViewerToken);
    private HttpClient Anonymous => Host.Client();

    private static string NewClass() => "t-" + Guid.NewGuid().ToString("N")[..10];

    private async Task SetCurrentAsync(string machineClass, string digest, long release, long? floor = null)
    {
        (await Admin.PostAsJsonAsync($"/api/v1/releases/{machineClass}/current", new SetCurrentReleaseRequest(digest, release, "test"),
            FleetJson.Default.SetCurrentReleaseRequest)).EnsureSuccessStatusCode();
        if (floor is { } f)
            (await Admin.PostAsJsonAsync($"/api/v1/releases/{machineClass}/floor", new ReleaseFloorRequest(f, false, "test"),
                FleetJson.Default.ReleaseFloorRequest)).EnsureSuccessStatusCode();
    }

    private Task<HttpResponseMessage> PostTicket(byte[] body) =>
        Anonymous.PostAsync(BootEndpoints.TicketPath, new ByteArrayContent(body) { Headers = { ContentType = new("application/json") } });

    /// <summary>What stboot does: a fresh nonce, a request signed with the identity key, the ticket bytes back.</summary>
    private async Task<(byte[] Ticket, byte[] Nonce)> TicketAsync(byte[] identityPrivate, string? machineClass)
    {
        byte[] nonce = RandomNumberGenerator.GetBytes(32);
        using var response = await PostTicket(TicketRequest.Create(identityPrivate, nonce, machineClass).ToJson());
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return (await response.Content.ReadAsByteArrayAsync(), nonce);
    }

    private static FreshnessReport Report(byte[]? ticket, long release, string machineClass, bool fresh = true, string? reason = null) =>
        new(fresh, reason, ticket is null ? null : Convert.ToBase64String(ticket), release, machineClass);

    private async Task<MachineView> MachineAsync(string id) => (await Viewer.GetFromJsonAsync($"/api/v1/machines/{id}", FleetJson.Default.MachineView))!;

    private async Task ProvisionAsync(string id) =>
        (await Operator.PostAsJsonAsync($"/api/v1/machines/{id}/provision", new ProvisionRequest("se-sto-wg-" + Guid.NewGuid().ToString("N")[..6],
            "se", "Sweden", "sto", "Stockholm", "31173", true, "185.65.134.9", null, 51820, 100, true, "rack"), FleetJson.Default.ProvisionRequest))
        .EnsureSuccessStatusCode();

    private Task<HttpResponseMessage> DeployAsync(string id, string? reason = "go", bool? overrideFreshness = null) =>
        Operator.PostAsJsonAsync($"/api/v1/machines/{id}/deploy", new ReasonRequest(reason, overrideFreshness), FleetJson.Default.ReasonRequest);

    [Fact]
    public async Task Ticket_names_the_class_current_digest_and_floor_with_the_requests_nonce_signed_by_the_ticket_key_and_is_recorded()
    {
        if (!fleet.Available) return;
        string c = NewClass(), digest = Http.NewDigest();
        await SetCurrentAsync(c, digest, 3, floor: 2);
        var relay = new TestRelay();   // a first boot: not enrolled yet, it still needs a ticket to boot
        long before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var (bytes, nonce) = await TicketAsync(relay.IdentityPrivate, c);

        var ticket = BootTicket.Parse(bytes);
        Assert.True(ticket.VerifySignature(Host.TicketKey.PublicKey));
        Assert.False(ticket.VerifySignature(Ed25519.PublicKeyOf(Ed25519.NewPrivateKey())));
        var p = ticket.Payload;
        Assert.Equal(relay.MachineId, p.MachineId);
        Assert.True(p.HasNonce(nonce));
        Assert.Equal(digest, p.PackageSha256.Hex);
        Assert.Equal((2L, c), (p.MinRelease, p.MachineClass));
        Assert.InRange(p.IssuedAt, before - 1, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        Assert.Equal(1, await Host.Store.ReadAsync(tx => tx.CountTicketsAsync(relay.MachineId), default));

        // The next boot attempt: a new nonce, a new ticket; after set-current, the new digest.
        string next = Http.NewDigest();
        await SetCurrentAsync(c, next, 4);
        var (again, nonce2) = await TicketAsync(relay.IdentityPrivate, c);
        Assert.True(BootTicket.Parse(again).Payload.HasNonce(nonce2));
        Assert.Equal(next, BootTicket.Parse(again).Payload.PackageSha256.Hex);
        Assert.Equal(2, await Host.Store.ReadAsync(tx => tx.CountTicketsAsync(relay.MachineId), default));
        Assert.Contains("tabula_fleet_boot_tickets_issued_total", await Anonymous.GetStringAsync("/metrics"));
    }

    [Fact]
    public async Task Ticket_request_signed_by_another_key_than_its_identity_key_is_refused_and_nothing_is_recorded()
    {
        if (!fleet.Available) return;
        string c = NewClass();
        await SetCurrentAsync(c, Http.NewDigest(), 1);
        var victim = new TestRelay();
        byte[] attacker = Ed25519.NewPrivateKey(), nonce = RandomNumberGenerator.GetBytes(32);
        byte[] victimPublic = Ed25519.PublicKeyOf(victim.IdentityPrivate);
        var forged = new TicketRequest(victimPublic, nonce, c, Ed25519.Sign(attacker, TicketRequest.Message(nonce, victimPublic, c)));
        await FreshnessTests.AssertError(await PostTicket(forged.ToJson()), 401, "forged_ticket_request");
        // A genuine request with its class changed after signing is a forgery too.
        var tampered = TicketRequest.Create(victim.IdentityPrivate, nonce, c) with { MachineClass = NewClass() };
        await FreshnessTests.AssertError(await PostTicket(tampered.ToJson()), 401, "forged_ticket_request");
        Assert.Equal(0, await Host.Store.ReadAsync(tx => tx.CountTicketsAsync(victim.MachineId), default));
    }

    [Fact]
    public async Task Ticket_for_a_class_without_a_current_release_is_409_and_a_retired_machine_gets_403()
    {
        if (!fleet.Available) return;
        var relay = new TestRelay();
        byte[] nonce = RandomNumberGenerator.GetBytes(32);
        await FreshnessTests.AssertError(await PostTicket(TicketRequest.Create(relay.IdentityPrivate, nonce, NewClass()).ToJson()), 409, "no_current_release");
        await FreshnessTests.AssertError(await PostTicket(TicketRequest.Create(relay.IdentityPrivate, nonce, null).ToJson()), 409, "no_current_release");

        string c = NewClass();
        await SetCurrentAsync(c, Http.NewDigest(), 1);
        await relay.EnrollAsync(Anonymous, fleet.EnrollmentToken, Http.NewDigest());
        await TicketAsync(relay.IdentityPrivate, c);
        (await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/retire", new ReasonRequest("stolen"), FleetJson.Default.ReasonRequest))
            .EnsureSuccessStatusCode();
        await FreshnessTests.AssertError(await PostTicket(TicketRequest.Create(relay.IdentityPrivate, RandomNumberGenerator.GetBytes(32), c).ToJson()),
            403, "forbidden");
        Assert.Equal(1, await Host.Store.ReadAsync(tx => tx.CountTicketsAsync(relay.MachineId), default));
    }

    [Fact]
    public async Task Ticket_request_malformed_truncated_or_oversized_gets_a_typed_4xx_and_random_mutations_never_a_5xx()
    {
        if (!fleet.Available) return;
        string c = NewClass();
        await SetCurrentAsync(c, Http.NewDigest(), 1);
        byte[] good = TicketRequest.Create(Ed25519.NewPrivateKey(), RandomNumberGenerator.GetBytes(32), c).ToJson();
        foreach (byte[] bad in new[] { ""u8.ToArray(), "{"u8.ToArray(), "null"u8.ToArray(), "[]"u8.ToArray(), good[..(good.Length / 2)],
                                       "{\"identity_key\":\"AAAA\",\"nonce\":\"AAAA\",\"signature\":\"AAAA\"}"u8.ToArray() })
            await FreshnessTests.AssertError(await PostTicket(bad), 400, "invalid_input");

        byte[] big = new byte[Limits.MaxTicketRequestBytes + 1];
        big.AsSpan().Fill((byte)' ');
        good.CopyTo(big, 0);
        await FreshnessTests.AssertError(await PostTicket(big), 413, "body_too_large");
        await FreshnessTests.AssertError(await PostTicket(new byte[200_000]), 413, "body_too_large");
        // Without Content-Length (chunked): the bound holds while reading.
        var chunked = new StreamContent(new MemoryStream(big)) { Headers = { ContentType = new("application/json") } };
        using (var request = new HttpRequestMessage(HttpMethod.Post, BootEndpoints.TicketPath) { Content = chunked })
        {
            request.Headers.TransferEncodingChunked = true;
            await FreshnessTests.AssertError(await Anonymous.SendAsync(request), 413, "body_too_large");
        }
        Assert.Equal(HttpStatusCode.OK, (await PostTicket(good)).StatusCode);   // the bound is not below a real request

        var random = new Random(16);
        for (int i = 0; i < 150; i++)
        {
            byte[] mutated = good.ToArray();
            for (int flips = random.Next(1, 4); flips > 0; flips--) mutated[random.Next(mutated.Length)] = (byte)random.Next(256);
            if (random.Next(4) == 0) mutated = mutated[..random.Next(mutated.Length)];
            using var response = await PostTicket(mutated);
            Assert.True((int)response.StatusCode is 200 or 400 or 401 or 409, $"{(int)response.StatusCode} for mutation {i}");
            if (!response.IsSuccessStatusCode) Assert.NotNull((await Http.ErrorOf(response)).Error);
        }
    }

    [Fact]
    public async Task Fresh_relay_reporting_the_ticket_it_was_issued_enrolls_fresh_and_deploys_without_override()
    {
        if (!fleet.Available) return;
        string c = NewClass(), digest = Http.NewDigest();
        await SetCurrentAsync(c, digest, 2, floor: 2);
        var relay = new TestRelay();
        var (ticket, _) = await TicketAsync(relay.IdentityPrivate, c);
        await relay.EnrollAsync(Anonymous, fleet.EnrollmentToken, digest, Report(ticket, 2, c));
        var machine = await MachineAsync(relay.MachineId);
        Assert.Equal(("fresh", (string?)null, 2L, c, 2L, false),
            (machine.Freshness, machine.FreshnessReason, machine.Release, machine.MachineClass, machine.Floor, machine.BelowFloor));
        await ProvisionAsync(relay.MachineId);
        var deployed = await DeployAsync(relay.MachineId);
        Assert.True(deployed.IsSuccessStatusCode, await deployed.Content.ReadAsStringAsync());
        var audit = (await Admin.GetFromJsonAsync("/api/v1/audit?limit=1000", FleetJson.Default.ListAuditView))!;
        Assert.Contains(audit, a => a.Target == relay.MachineId && a.Action == "machine.enroll" && a.Detail!.Contains("freshness fresh, release 2"));
        Assert.DoesNotContain(audit, a => a.Target == relay.MachineId && a.Action == "machine.override-freshness");
    }

    [Fact]
    public async Task Rollback_relay_booted_from_another_package_than_its_ticket_names_is_unfresh_and_refused_at_deploy_unless_overridden()
    {
        if (!fleet.Available) return;
        string c = NewClass(), old = Http.NewDigest(), current = Http.NewDigest();
        await SetCurrentAsync(c, old, 1);
        await SetCurrentAsync(c, current, 2, floor: 2);
        var relay = new TestRelay();
        // A seized provisioning server served release 1; stboot had a genuine ticket naming release 2's digest.
        var (ticket, _) = await TicketAsync(relay.IdentityPrivate, c);
        await relay.EnrollAsync(Anonymous, fleet.EnrollmentToken, old, Report(ticket, 1, c));
        var machine = await MachineAsync(relay.MachineId);
        Assert.Equal(("unfresh", "ticket-digest", 1L, true), (machine.Freshness, machine.FreshnessReason, machine.Release, machine.BelowFloor));
        await ProvisionAsync(relay.MachineId);
        await FreshnessTests.AssertError(await DeployAsync(relay.MachineId), 409, "unfresh");
        Assert.Equal("provisioned", (await MachineAsync(relay.MachineId)).State);

        var overridden = await DeployAsync(relay.MachineId, "release 2 breaks this NIC; r1 hotfix", true);
        Assert.True(overridden.IsSuccessStatusCode, await overridden.Content.ReadAsStringAsync());
        var audit = (await Admin.GetFromJsonAsync("/api/v1/audit?limit=1000", FleetJson.Default.ListAuditView))!;
        var entry = Assert.Single(audit, a => a.Target == relay.MachineId && a.Action == "machine.override-freshness");
        Assert.Equal(("oscar", "release 2 breaks this NIC; r1 hotfix"), (entry.Actor, entry.Reason));
        Assert.StartsWith("ticket-digest", entry.Detail);
    }

    [Fact]
    public async Task Ticket_reported_at_enrollment_is_checked_for_signer_machine_and_issue()
    {
        if (!fleet.Available) return;
        string c = NewClass(), digest = Http.NewDigest();
        await SetCurrentAsync(c, digest, 1);
        var other = new TestRelay();
        var (othersTicket, _) = await TicketAsync(other.IdentityPrivate, c);

        var relay = new TestRelay();
        byte[] nonce = RandomNumberGenerator.GetBytes(32);
        var payload = new BootTicketPayload(relay.MachineId, nonce, Sha256Digest.Parse(digest, "digest"), 0, c, DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        var cases = new (byte[]? Ticket, string Reason)[]
        {
            (BootTicket.Sign(payload, Ed25519.NewPrivateKey()), "ticket-signature"),   // an attacker's ticket key
            (othersTicket, "ticket-machine"),                                          // another machine's genuine ticket
            (Host.TicketKey.SignTicket(payload), "ticket-unknown"),                    // signed by our key but never issued
            ("{\"payload\":"u8.ToArray(), "ticket-malformed"),
            (null, "ticket-unavailable"),                                             // optional policy, controller was down
        };
        foreach (var (ticket, reason) in cases)
        {
            await relay.EnrollAsync(Anonymous, fleet.EnrollmentToken, digest, Report(ticket, 1, c, fresh: ticket is not null, reason: ticket is null ? reason : null));
            var machine = await MachineAsync(relay.MachineId);
            Assert.Equal(("unfresh", reason), (machine.Freshness, machine.FreshnessReason));
        }
        // A report whose reason is not a reason name is not echoed.
        await relay.EnrollAsync(Anonymous, fleet.EnrollmentToken, digest, Report(null, 1, c, fresh: false, reason: "<script>"));
        Assert.Equal("relay-unfresh", (await MachineAsync(relay.MachineId)).FreshnessReason);
    }

    [Fact]
    public async Task Fresh_deployed_relay_that_reboots_unfresh_waits_for_staff_even_with_an_allowed_package()
    {
        if (!fleet.Available) return;
        string c = NewClass(), digest = Http.NewDigest();
        await SetCurrentAsync(c, digest, 1);
        (await Admin.PostAsJsonAsync("/api/v1/packages/allowed", new AllowPackageRequest(digest, "r1"), FleetJson.Default.AllowPackageRequest))
            .EnsureSuccessStatusCode();
        var relay = new TestRelay();
        await relay.EnrollAsync(Anonymous, fleet.EnrollmentToken, digest, Report((await TicketAsync(relay.IdentityPrivate, c)).Ticket, 1, c));
        await ProvisionAsync(relay.MachineId);
        (await DeployAsync(relay.MachineId)).EnsureSuccessStatusCode();

        // Reboot, fresh: stays deployed with no staff action (the package is allowed).
        await relay.EnrollAsync(Anonymous, fleet.EnrollmentToken, digest, Report((await TicketAsync(relay.IdentityPrivate, c)).Ticket, 1, c));
        Assert.Equal("deployed", (await MachineAsync(relay.MachineId)).State);
        // Reboot without a ticket (optional policy, controller unreachable): awaiting, remembering deployed.
        await relay.EnrollAsync(Anonymous, fleet.EnrollmentToken, digest, Report(null, 1, c, fresh: false, reason: "ticket-unavailable"));
        var machine = await MachineAsync(relay.MachineId);
        Assert.Equal(("awaiting", "deployed", "unfresh"), (machine.State, machine.PreviousState, machine.Freshness));
    }
}

public sealed class SqliteTicketTests(SqliteFleetFixture fleet) : TicketTests(fleet), IClassFixture<SqliteFleetFixture>;

[Collection(PostgresCollection.Name)]
public sealed class PostgresTicketTests(PostgresFleetFixture fleet) : TicketTests(fleet), IClassFixture<PostgresFleetFixture>;

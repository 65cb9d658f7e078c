using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using Tabula.Fleet.Api;
using Tabula.Fleet.Core;
using Microsoft.Extensions.DependencyInjection;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>
/// Issue 17, availability: each attack of an unauthenticated (or customer-authenticated) client run against a real
/// controller (Kestrel, and SQLite or PostgreSQL: the derived classes at the end), each controller started with the
/// options the attack needs. docs/security.md lists them.
/// </summary>
public abstract class AvailabilityTests
{
    /// <summary>A fresh database, or null when its server is not available (skip outside CI).</summary>
    protected abstract Task<string?> DatabaseAsync();

    private static readonly IPAddress Attacker = IPAddress.Parse("127.0.0.1"), Other = IPAddress.Parse("127.0.0.2");

    /// <summary>The store's and services' clock, moved by the test (the rate limiter keeps its own).</summary>

    private sealed record Fleet(FleetHost Host, string Admin, string Operator, string Viewer, string Enrollment) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Host.DisposeAsync();
    }

    private async Task<Fleet?> StartAsync(Func<FleetOptions, FleetOptions>? configure = null, TimeProvider? time = null)
    {
        string? database = await DatabaseAsync();
        if (database is null) return null;
        var host = await FleetHost.StartAsync(database, configure, time);
        var ct = CancellationToken.None;
        var admin = await host.Staff.CreateStaffAsync("test", "alice", FleetFixture.AdminPassword, StaffRole.Admin, ct);
        var op = await host.Staff.CreateStaffAsync("test", "oscar", FleetFixture.AdminPassword, StaffRole.Operator, ct);
        var viewer = await host.Staff.CreateStaffAsync("test", "vera", FleetFixture.AdminPassword, StaffRole.Viewer, ct);
        return new Fleet(host, await host.Staff.CreateApiTokenAsync(admin, "t", ct), await host.Staff.CreateApiTokenAsync(op, "t", ct),
            await host.Staff.CreateApiTokenAsync(viewer, "t", ct), await host.Enrollment.CreateEnrollmentTokenAsync("test", "relays", ct));
    }

    private static async Task<TestRelay> DeployedRelayAsync(Fleet fleet)
    {
        var relay = new TestRelay();
        await relay.EnrollAsync(fleet.Host.Client(), fleet.Enrollment, Http.NewDigest());
        var op = fleet.Host.Client(fleet.Operator);
        var placement = new ProvisionRequest("r-" + Guid.NewGuid().ToString("N")[..10], "de", "Germany", "ber", "Berlin", "hetzner", false,
            "192.0.2.10", null, 51820, 100, true, null);
        (await op.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", placement, FleetJson.Default.ProvisionRequest)).EnsureSuccessStatusCode();
        (await op.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/deploy", new ReasonRequest(null), FleetJson.Default.ReasonRequest)).EnsureSuccessStatusCode();
        return relay;
    }

    private static async Task<DeviceView> AddAsync(HttpClient customer)
    {
        var response = await customer.PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(Http.NewWireGuardKey()), FleetJson.Default.AddDeviceRequest);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync(FleetJson.Default.DeviceView))!;
    }

    private static async Task<long> RemoveAsync(HttpClient customer, DeviceView device)
    {
        var response = await customer.DeleteAsync($"/app/v1/devices/{device.Id}");
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync(FleetJson.Default.RevisionResponse))!.Revision;
    }

    private static async Task ReportAppliedAsync(Fleet fleet, TestRelay relay, long revision) =>
        (await fleet.Host.Client(relay.RelayToken).PostAsJsonAsync(RelayRoutes.Prefix + RelayRoutes.Applied, new AppliedRequest(revision),
            FleetJson.Default.AppliedRequest)).EnsureSuccessStatusCode();

    private static async Task AssertError(HttpResponseMessage response, int status, string code)
    {
        var (actual, error) = await Http.ErrorOf(response);
        Assert.True(status == actual, $"expected {status}, got {actual}: {error?.Error} {error?.Message}");
        Assert.Equal(code, error?.Error);
    }

    // ---- pool exhaustion: address reuse

    [Fact]
    public async Task Add_delete_cycles_reuse_an_address_only_after_every_relay_applied_the_removal_and_the_quarantine_passed()
    {
        var clock = new ManualClock();
        await using var fleet = await StartAsync(o => o with { AddressQuarantine = TimeSpan.FromHours(1) }, clock);
        if (fleet is null) return;
        var relay = await DeployedRelayAsync(fleet);
        var customer = fleet.Host.Client((await fleet.Host.CreateAccountAsync(fleet.Operator)).Number, "Token");

        // The attack: add and delete over and over. Every removal is fresh and no relay has applied it: nothing is reused.
        var first = await AddAsync(customer);
        long removedAt = await RemoveAsync(customer, first);
        var seen = new HashSet<string> { first.Ipv4Address };
        for (int i = 0; i < 6; i++)
        {
            var device = await AddAsync(customer);
            Assert.True(seen.Add(device.Ipv4Address), $"cycle {i} reused {device.Ipv4Address} before any relay applied its removal");
            await RemoveAsync(customer, device);
        }

        // The quarantine passes, but the relay has not applied the removal: still no reuse.
        clock.Advance(TimeSpan.FromHours(2));
        var notYet = await AddAsync(customer);
        Assert.DoesNotContain(notYet.Ipv4Address, seen);
        seen.Add(notYet.Ipv4Address);

        // The relay applies the first removal: that slot, the longest released, comes back, both families.
        await ReportAppliedAsync(fleet, relay, removedAt);
        var reused = await AddAsync(customer);
        Assert.Equal((first.Ipv4Address, first.Ipv6Address), (reused.Ipv4Address, reused.Ipv6Address));
        // (The quarantine alone, with the relay condition trivially met: the next test.)
    }

    /// <summary>No machine receives peers, so only the quarantine holds a released address back.</summary>
    [Fact]
    public async Task Without_relays_a_released_address_still_waits_out_the_quarantine()
    {
        var clock = new ManualClock();
        await using var fleet = await StartAsync(o => o with { AddressQuarantine = TimeSpan.FromMinutes(30) }, clock);
        if (fleet is null) return;
        var customer = fleet.Host.Client((await fleet.Host.CreateAccountAsync(fleet.Operator)).Number, "Token");
        var first = await AddAsync(customer);
        await RemoveAsync(customer, first);
        Assert.NotEqual(first.Ipv4Address, (await AddAsync(customer)).Ipv4Address);
        clock.Advance(TimeSpan.FromMinutes(31));
        Assert.Equal(first.Ipv6Address, (await AddAsync(customer)).Ipv6Address);
    }

    // ---- pool exhaustion: device churn per account

    [Fact]
    public async Task Device_churn_past_the_accounts_budget_gets_429_with_retry_after_and_other_accounts_keep_working()
    {
        var clock = new ManualClock();
        await using var fleet = await StartAsync(o => o with { DeviceAddsPerWindow = 4, DeviceChurnWindow = TimeSpan.FromHours(1) }, clock);
        if (fleet is null) return;
        var attacker = fleet.Host.Client((await fleet.Host.CreateAccountAsync(fleet.Operator)).Number, "Token");
        for (int i = 0; i < 4; i++) await RemoveAsync(attacker, await AddAsync(attacker));

        var refused = await attacker.PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(Http.NewWireGuardKey()), FleetJson.Default.AddDeviceRequest);
        await AssertError(refused, 429, "rate_limited");
        var retry = refused.Headers.RetryAfter?.Delta;
        Assert.NotNull(retry);
        Assert.InRange(retry.Value, TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));
        Assert.Empty((await attacker.GetFromJsonAsync("/app/v1/devices", FleetJson.Default.ListDeviceView))!);   // nothing half-added

        var other = fleet.Host.Client((await fleet.Host.CreateAccountAsync(fleet.Operator)).Number, "Token");
        await AddAsync(other);

        clock.Advance(TimeSpan.FromHours(1));
        await AddAsync(attacker);
    }

    // ---- peer-limit wipe loop: the fleet's capacity

    /// <summary>
    /// The attack: add devices until the fleet holds more than a relay's WireGuard device can (2^20 in the kernel), so every
    /// relay's snapshot fails. Here the capacity is 10 and the last 3 slots are raced by 16 accounts at once (on PostgreSQL
    /// through two controller instances): exactly 3 are added, the rest get 409 fleet_full with nothing half-added.
    /// </summary>
    [Fact]
    public async Task Concurrent_adds_at_the_fleet_capacity_create_exactly_capacity_devices_and_the_rest_get_409_fleet_full()
    {
        const int capacity = 10;
        await using var fleet = await StartAsync(o => o with { FleetCapacity = capacity });
        if (fleet is null) return;
        await using var second = fleet.Host.Database.StartsWith("postgres:", StringComparison.Ordinal)
            ? await FleetHost.StartAsync(fleet.Host.Database, o => o with { FleetCapacity = capacity }) : null;
        var filler = fleet.Host.Client((await fleet.Host.CreateAccountAsync(fleet.Operator)).Number, "Token");
        var other = fleet.Host.Client((await fleet.Host.CreateAccountAsync(fleet.Operator)).Number, "Token");
        for (int i = 0; i < 5; i++) await AddAsync(filler);
        var early = await AddAsync(other);
        await AddAsync(other);

        var racers = new List<HttpClient>();
        for (int i = 0; i < 16; i++)
            racers.Add((i % 2 == 1 && second is not null ? second : fleet.Host).Client((await fleet.Host.CreateAccountAsync(fleet.Operator)).Number, "Token"));
        var statuses = await Task.WhenAll(racers.Select(async racer =>
        {
            var response = await racer.PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(Http.NewWireGuardKey()), FleetJson.Default.AddDeviceRequest);
            if (response.StatusCode != HttpStatusCode.Created) await AssertError(response, 409, "fleet_full");
            return response.StatusCode;
        }));
        Assert.Equal(3, statuses.Count(s => s == HttpStatusCode.Created));
        var customers = fleet.Host.App.Services.GetRequiredService<CustomerService>();
        Assert.Equal(capacity, (await customers.CountsAsync(CancellationToken.None)).Devices);
        int held = 0;
        foreach (var racer in racers)
            held += (await racer.GetFromJsonAsync("/app/v1/devices", FleetJson.Default.ListDeviceView))!.Count;
        Assert.Equal(3, held);   // the refused ones hold nothing

        // Full: any account is refused; a removal frees exactly one slot.
        await AssertError(await other.PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(Http.NewWireGuardKey()), FleetJson.Default.AddDeviceRequest), 409, "fleet_full");
        await RemoveAsync(other, early);
        await AddAsync(other);
        await AssertError(await filler.PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(Http.NewWireGuardKey()), FleetJson.Default.AddDeviceRequest), 409, "device_limit");
        await AssertError(await other.PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(Http.NewWireGuardKey()), FleetJson.Default.AddDeviceRequest), 409, "fleet_full");
        Assert.Equal(capacity, (await customers.CountsAsync(CancellationToken.None)).Devices);
    }

    [Fact]
    public async Task A_fleet_capacity_above_the_kernels_peer_limit_is_refused_at_start()
    {
        string? database = await DatabaseAsync();
        if (database is null) return;
        var refused = await Assert.ThrowsAsync<ArgumentException>(() => FleetHost.StartAsync(database, o => o with { FleetCapacity = (1 << 20) + 1 }));
        Assert.Contains("1048576", refused.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => FleetHost.StartAsync(database, o => o with { FleetCapacity = 0 }));
        await using (await FleetHost.StartAsync(database, o => o with { FleetCapacity = 1 << 20 })) { }   // exactly the limit fits
        if (!database.StartsWith("sqlite:", StringComparison.Ordinal)) return;
        var (exit, _, stderr) = await TabulaCli.RunAsync(["fleet", "serve", "--db", database, "--urls", "http://127.0.0.1:0", "--fleet-capacity", "1048577"]);
        Assert.Equal(2, exit);
        Assert.Contains("--fleet-capacity", stderr);
        Assert.Contains("1048576", stderr);
    }

    // ---- pool exhaustion: account creation

    [Fact]
    public async Task Anonymous_account_creation_is_refused_by_default_and_a_staff_voucher_creates_one_account()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        var anonymous = fleet.Host.Client();
        await AssertError(await anonymous.PostAsync("/app/v1/accounts", null), 403, "account_creation_refused");
        await AssertError(await anonymous.PostAsJsonAsync("/app/v1/accounts", new SelfServiceAccountRequest("tv_guess", null, null),
            FleetJson.Default.SelfServiceAccountRequest), 403, "account_creation_refused");
        await AssertError(await anonymous.PostAsync("/app/v1/accounts/challenge", null), 403, "account_creation_refused");

        await AssertError(await fleet.Host.Client(fleet.Viewer).PostAsJsonAsync("/api/v1/vouchers", new CreateVoucherRequest("x", null, null),
            FleetJson.Default.CreateVoucherRequest), 403, "forbidden");
        var created = await fleet.Host.Client(fleet.Operator).PostAsJsonAsync("/api/v1/vouchers", new CreateVoucherRequest("shop order 17", null, 7),
            FleetJson.Default.CreateVoucherRequest);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var voucher = (await created.Content.ReadFromJsonAsync(FleetJson.Default.VoucherCreated))!;
        var redeem = new SelfServiceAccountRequest(voucher.Code, null, null);

        var account = await anonymous.PostAsJsonAsync("/app/v1/accounts", redeem, FleetJson.Default.SelfServiceAccountRequest);
        Assert.Equal(HttpStatusCode.Created, account.StatusCode);
        Assert.Matches("^[1-9][0-9]{15}$", (await account.Content.ReadFromJsonAsync(FleetJson.Default.AccountView))!.Number);
        await AssertError(await anonymous.PostAsJsonAsync("/app/v1/accounts", redeem, FleetJson.Default.SelfServiceAccountRequest), 403, "account_creation_refused");

        string listed = await fleet.Host.Client(fleet.Viewer).GetStringAsync("/api/v1/vouchers");
        Assert.DoesNotContain(voucher.Code, listed);
        var views = await fleet.Host.Client(fleet.Viewer).GetFromJsonAsync("/api/v1/vouchers", FleetJson.Default.ListVoucherView);
        var view = views!.Single(v => v.Id == voucher.Id);
        Assert.Equal((1, 1, "oscar", "shop order 17"), (view.Uses, view.MaxUses, view.CreatedBy, view.Name));

        // Revoked: refused although uses are left; both actions are in the audit log (without the code).
        var many = (await (await fleet.Host.Client(fleet.Operator).PostAsJsonAsync("/api/v1/vouchers", new CreateVoucherRequest("event", 50, null),
            FleetJson.Default.CreateVoucherRequest)).Content.ReadFromJsonAsync(FleetJson.Default.VoucherCreated))!;
        Assert.Equal(HttpStatusCode.NoContent, (await fleet.Host.Client(fleet.Operator).DeleteAsync($"/api/v1/vouchers/{many.Id}?reason=leaked")).StatusCode);
        await AssertError(await anonymous.PostAsJsonAsync("/app/v1/accounts", new SelfServiceAccountRequest(many.Code, null, null),
            FleetJson.Default.SelfServiceAccountRequest), 403, "account_creation_refused");
        var audit = await fleet.Host.Client(fleet.Admin).GetFromJsonAsync("/api/v1/audit", FleetJson.Default.ListAuditView);
        Assert.Contains(audit!, e => e.Action == "voucher.create" && e.Actor == "oscar");
        Assert.Contains(audit!, e => e.Action == "voucher.revoke" && e.Reason == "leaked");
        Assert.DoesNotContain(audit!, e => (e.Detail ?? "").Contains(many.Code) || e.Target.Contains(many.Code));
    }

    [Fact]
    public async Task Concurrent_redemptions_of_a_single_use_voucher_create_exactly_one_account()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        var voucher = (await (await fleet.Host.Client(fleet.Operator).PostAsJsonAsync("/api/v1/vouchers", new CreateVoucherRequest("once", 1, null),
            FleetJson.Default.CreateVoucherRequest)).Content.ReadFromJsonAsync(FleetJson.Default.VoucherCreated))!;
        var attempts = Enumerable.Range(0, 16).Select(async _ =>
        {
            using var client = fleet.Host.Client();
            return (await client.PostAsJsonAsync("/app/v1/accounts", new SelfServiceAccountRequest(voucher.Code, null, null),
                FleetJson.Default.SelfServiceAccountRequest)).StatusCode;
        });
        var statuses = await Task.WhenAll(attempts);
        Assert.Equal(1, statuses.Count(s => s == HttpStatusCode.Created));
        Assert.Equal(15, statuses.Count(s => s == HttpStatusCode.Forbidden));
    }

    [Fact]
    public async Task Proof_of_work_and_open_creation_happen_only_when_the_operator_chose_them()
    {
        await using (var pow = await StartAsync(o => o with { AccountCreation = AccountCreation.ProofOfWork, ProofOfWorkBits = 10 }))
        {
            if (pow is null) return;
            var anonymous = pow.Host.Client();
            await AssertError(await anonymous.PostAsync("/app/v1/accounts", null), 403, "account_creation_refused");
            var challenge = (await (await anonymous.PostAsync("/app/v1/accounts/challenge", null)).Content.ReadFromJsonAsync(FleetJson.Default.AccountChallengeView))!;
            Assert.Equal(10, challenge.DifficultyBits);
            byte[] c = Convert.FromHexString(challenge.Challenge);
            byte[] nonce = ProofOfWork.Solve(c, 10);
            byte[] wrong = (byte[])nonce.Clone();
            do { wrong[^1]++; } while (ProofOfWork.Verify(c, wrong, 10));
            await AssertError(await anonymous.PostAsJsonAsync("/app/v1/accounts", new SelfServiceAccountRequest(null, challenge.Challenge,
                Convert.ToHexString(wrong)), FleetJson.Default.SelfServiceAccountRequest), 403, "account_creation_refused");
            var solved = new SelfServiceAccountRequest(null, challenge.Challenge, Convert.ToHexString(nonce));
            Assert.Equal(HttpStatusCode.Created, (await anonymous.PostAsJsonAsync("/app/v1/accounts", solved, FleetJson.Default.SelfServiceAccountRequest)).StatusCode);
            // A solution is good for one account.
            await AssertError(await anonymous.PostAsJsonAsync("/app/v1/accounts", solved, FleetJson.Default.SelfServiceAccountRequest), 403, "account_creation_refused");
        }
        await using var open = await StartAsync(o => o with { AccountCreation = AccountCreation.Open });
        if (open is null) return;
        Assert.Equal(HttpStatusCode.Created, (await open.Host.Client().PostAsync("/app/v1/accounts", null)).StatusCode);
    }

    // ---- rate limits: per source and per credential on every group

    /// <summary>Requests until the first 429 (at most 3× the budget); returns how many succeeded before it and the 429.</summary>
    private static async Task<(int Before, HttpResponseMessage Refusal)> BurstAsync(Func<Task<HttpResponseMessage>> send, int budget)
    {
        for (int i = 0; i < 3 * budget + 3; i++)
        {
            var response = await send();
            if (response.StatusCode == HttpStatusCode.TooManyRequests) return (i, response);
        }
        throw new Xunit.Sdk.XunitException($"no 429 after {3 * budget + 3} requests with a budget of {budget}");
    }

    private static async Task AssertLimited(Func<Task<HttpResponseMessage>> send, int budget)
    {
        var (before, refusal) = await BurstAsync(send, budget);
        // The bucket starts full; it refills one permit per 60/budget s, so a slow machine may get a permit or two more.
        Assert.InRange(before, budget, budget + 2);
        await AssertError(refusal, 429, "rate_limited");
        Assert.True(refusal.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), "Retry-After in seconds");
    }

    private static readonly FleetRateLimits Tight = new()
    {
        Customer = new(PerSource: 8, PerCredential: 5), RelayList = new(6, 0), Login = new(6, 3), Enrollment = new(5, 100),
        Staff = new(7, 100), Accounts = new(4, 0), Relay = new(9, 4), Public = new(5, 0),
    };

    [Fact]
    public async Task A_burst_from_one_source_gets_429_on_every_public_group_while_another_source_still_works()
    {
        await using var fleet = await StartAsync(o => o with { RateLimits = Tight });
        if (fleet is null) return;
        var host = fleet.Host;
        // Accounts and a relay made before the budgets are spent (through the store-backed services, not HTTP).
        var accounts = new List<string>();
        for (int i = 0; i < 3; i++) accounts.Add((await host.App.Services.GetRequiredService<CustomerService>().CreateAccountAsync("test", null, default)).Number);

        // customer API, per source: three accounts from one address share its budget of 8.
        int n = 0;
        await AssertLimited(() => host.ClientFrom(Attacker, accounts[n++ % 2], "Token").GetAsync("/app/v1/devices"), 8);
        Assert.Equal(HttpStatusCode.OK, (await host.ClientFrom(Other, accounts[2], "Token").GetAsync("/app/v1/devices")).StatusCode);

        // relay list (anonymous), metrics and dashboard, account creation
        await AssertLimited(() => host.ClientFrom(Attacker).GetAsync("/app/v1/relays"), 6);
        Assert.Equal(HttpStatusCode.OK, (await host.ClientFrom(Other).GetAsync("/app/v1/relays")).StatusCode);
        await AssertLimited(() => host.ClientFrom(Attacker).GetAsync("/metrics"), 5);
        Assert.Equal(HttpStatusCode.OK, (await host.ClientFrom(Other).GetAsync("/metrics")).StatusCode);
        await AssertLimited(() => host.ClientFrom(Attacker).PostAsync("/app/v1/accounts", null), 4);
        await AssertError(await host.ClientFrom(Other).PostAsync("/app/v1/accounts", null), 403, "account_creation_refused");

        // enrollment (nonces with a guessed token), staff API
        await AssertLimited(() => host.ClientFrom(Attacker, "guessed-enrollment-token").PostAsync(RelayRoutes.Prefix + RelayRoutes.Nonce, null), 5);
        Assert.Equal(HttpStatusCode.OK, (await host.ClientFrom(Other, fleet.Enrollment).PostAsync(RelayRoutes.Prefix + RelayRoutes.Nonce, null)).StatusCode);
        await AssertLimited(() => host.ClientFrom(Attacker, "tfa_guess").GetAsync("/api/v1/me"), 7);
        Assert.Equal(HttpStatusCode.OK, (await host.ClientFrom(Other, fleet.Viewer).GetAsync("/api/v1/me")).StatusCode);

        // login, per source: different usernames from one address
        int u = 0;
        await AssertLimited(() => host.ClientFrom(Attacker).PostAsJsonAsync("/api/v1/login", new LoginRequest($"user{u++}", "wrong password!", null),
            FleetJson.Default.LoginRequest), 6);
        await AssertError(await host.ClientFrom(Other).PostAsJsonAsync("/api/v1/login", new LoginRequest("nobody", "wrong password!", null),
            FleetJson.Default.LoginRequest), 401, "unauthenticated");
    }

    [Fact]
    public async Task With_rate_limits_off_the_same_bursts_are_all_served()
    {
        await using var fleet = await StartAsync(o => o with { RateLimits = Tight with { Enabled = false } });
        if (fleet is null) return;
        for (int i = 0; i < 3 * 6; i++)
            Assert.Equal(HttpStatusCode.OK, (await fleet.Host.ClientFrom(Attacker).GetAsync("/app/v1/relays")).StatusCode);
        for (int i = 0; i < 2 * 3; i++)
            await AssertError(await fleet.Host.ClientFrom(Attacker).PostAsJsonAsync("/api/v1/login", new LoginRequest("alice", "not the password", null),
                FleetJson.Default.LoginRequest), 401, "unauthenticated");
    }

    [Fact]
    public async Task A_credential_spread_over_many_sources_is_limited_per_credential()
    {
        await using var fleet = await StartAsync(o => o with { RateLimits = Tight });
        if (fleet is null) return;
        var host = fleet.Host;
        var customers = host.App.Services.GetRequiredService<CustomerService>();
        string victim = (await customers.CreateAccountAsync("test", null, default)).Number, bystander = (await customers.CreateAccountAsync("test", null, default)).Number;

        // One account number from a new loopback address each time: the per-source budgets never run out, the account's does.
        int source = 10;
        await AssertLimited(() => host.ClientFrom(IPAddress.Parse($"127.0.0.{source++}"), victim, "Token").GetAsync("/app/v1/devices"), 5);
        Assert.Equal(HttpStatusCode.OK, (await host.ClientFrom(IPAddress.Parse($"127.0.0.{source++}"), bystander, "Token").GetAsync("/app/v1/devices")).StatusCode);

        // Login guesses for one username from many addresses: 3 per minute for that user, others unaffected.
        await AssertLimited(() => host.ClientFrom(IPAddress.Parse($"127.0.0.{source++}")).PostAsJsonAsync("/api/v1/login",
            new LoginRequest("alice", "not the password", null), FleetJson.Default.LoginRequest), 3);
        var login = await host.ClientFrom(IPAddress.Parse($"127.0.0.{source++}")).PostAsJsonAsync("/api/v1/login",
            new LoginRequest("vera", FleetFixture.AdminPassword, null), FleetJson.Default.LoginRequest);
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);

        // A relay token spread over addresses: limited per relay.
        var relay = new TestRelay();
        await relay.EnrollAsync(host.Client(), fleet.Enrollment, Http.NewDigest());
        await AssertLimited(() => host.ClientFrom(IPAddress.Parse($"127.0.0.{source++}"), relay.RelayToken).GetAsync(RelayRoutes.Prefix + RelayRoutes.Config), 4);
    }

    [Fact]
    public async Task One_client_holding_connections_cannot_take_the_controllers_slots()
    {
        await using var fleet = await StartAsync(o => o with { MaxConnections = 8, MaxConnectionsPerClient = 3 });
        if (fleet is null) return;
        var endpoint = new IPEndPoint(IPAddress.Loopback, fleet.Host.Address.Port);
        var held = new List<Socket>();
        try
        {
            // The attacker opens the global limit's worth of idle connections; past its 3 the controller closes them at once
            // (the 3 it keeps are idle within the 10 s request-header timeout while this waits at most 3 s).
            async Task<bool> ClosedByServer()
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                lock (held) held.Add(socket);
                socket.Bind(new IPEndPoint(Attacker, 0));
                try
                {
                    await socket.ConnectAsync(endpoint);
                    using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3));
                    return await socket.ReceiveAsync(new byte[1], SocketFlags.None, cts.Token) == 0;
                }
                catch (SocketException) { return true; }
                catch (OperationCanceledException) { return false; }
            }
            var results = new List<Task<bool>>();
            for (int i = 0; i < 8; i++) results.Add(ClosedByServer());
            int closed = (await Task.WhenAll(results)).Count(c => c);
            Assert.Equal(5, closed);
            // Another client still gets served, and the attacker's own fourth request fails while it holds three.
            Assert.Equal(HttpStatusCode.OK, (await fleet.Host.ClientFrom(Other).GetAsync("/app/v1/relays")).StatusCode);
            var refused = await Record.ExceptionAsync(() => fleet.Host.ClientFrom(Attacker).GetAsync("/app/v1/relays"));
            // Closed by the server: an HTTP failure, or the socket's own when the close beats the connect callback.
            Assert.True(refused is HttpRequestException or SocketException or IOException, $"expected a closed connection, got {refused}");
        }
        finally
        {
            foreach (var socket in held) socket.Dispose();
        }
    }
}

public sealed class SqliteAvailabilityTests : AvailabilityTests, IDisposable
{
    private readonly SqliteDatabases databases = new("avail");

    protected override Task<string?> DatabaseAsync() => databases.NextAsync();

    public void Dispose() => databases.Dispose();
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresAvailabilityTests : AvailabilityTests
{
    protected override Task<string?> DatabaseAsync() => PostgresDatabases.NextAsync();
}

using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Tabula.Fleet.Api;
using Tabula.Fleet.Core;
using Tabula.Fleet.Tests.Support;
using Xunit.Abstractions;

namespace Tabula.Fleet.Tests;

/// <summary>
/// Issue 17, "Staff credentials and sessions → Login": each attack against a real controller (Kestrel, and SQLite or PostgreSQL:
/// the derived classes at the end; on PostgreSQL every test runs two instances on one database and alternates between them, so
/// what holds, holds fleet-wide). Each test has its own database and clock. docs/security.md lists them.
/// </summary>
public abstract class LoginTests(ITestOutputHelper output)
{
    /// <summary>A fresh database, or null when its server is not available (skip outside CI).</summary>
    protected abstract Task<string?> DatabaseAsync();

    /// <summary>Whether the database serves several controller instances at once (PostgreSQL).</summary>
    protected abstract bool SeveralInstances { get; }

    private const string Password = FleetFixture.AdminPassword;


    /// <summary>One or two instances on one database and clock; alice (admin) and vera (viewer) with API tokens; alice with TOTP when asked.</summary>
    protected sealed record Fleet(FleetHost Host, FleetHost Other, ManualClock Clock, string Admin, byte[]? AliceTotp, long AliceStep) : IAsyncDisposable
    {
        private int turn;
        private long lastStep = AliceStep;

        /// <summary>The instances in turn (one on SQLite).</summary>
        public FleetHost Next() => Interlocked.Increment(ref turn) % 2 == 0 ? Host : Other;

        /// <summary>A client from 127.0.0.<paramref name="lastByte"/>: an attack's own source, so per-source backoff stays out of per-account tests.</summary>
        public HttpClient From(int lastByte, FleetHost? host = null) => (host ?? Next()).ClientFrom(IPAddress.Parse($"127.0.0.{lastByte}"));

        /// <summary>alice's next TOTP code: a later step than any used, the clock moved on to it.</summary>
        public string NextCode()
        {
            long step = Math.Max(lastStep + 1, Security.Totp.StepAt(Clock.GetUtcNow()));
            while (Security.Totp.StepAt(Clock.GetUtcNow()) + 1 < step) Clock.Advance(TimeSpan.FromSeconds(30));   // one step of skew is accepted
            lastStep = step;
            return Security.Totp.Code(AliceTotp!, step);
        }

        public async ValueTask DisposeAsync()
        {
            if (!ReferenceEquals(Other, Host)) await Other.DisposeAsync();
            await Host.DisposeAsync();
        }
    }

    protected async Task<Fleet?> StartAsync(Func<FleetOptions, FleetOptions>? configure = null, bool aliceTotp = true)
    {
        string? database = await DatabaseAsync();
        if (database is null) return null;
        var clock = new ManualClock();
        var host = await FleetHost.StartAsync(database, configure, clock);
        var other = SeveralInstances ? await FleetHost.StartAsync(database, configure, clock) : host;
        var ct = CancellationToken.None;
        var alice = await host.Staff.CreateStaffAsync("test", "alice", Password, StaffRole.Admin, ct);
        await host.Staff.CreateStaffAsync("test", "vera", Password, StaffRole.Viewer, ct);
        var (secret, step) = aliceTotp ? await FleetFixture.EnrollTotpAsync(host.Staff, alice, clock.GetUtcNow()) : (null, 0L);
        return new Fleet(host, other, clock, await host.Staff.CreateApiTokenAsync(alice, "t", ct), secret, step);
    }

    private static Task<HttpResponseMessage> LoginAsync(HttpClient client, string username, string password, string? totp) =>
        client.PostAsJsonAsync("/api/v1/login", new LoginRequest(username, password, totp), FleetJson.Default.LoginRequest);

    private static async Task AssertError(HttpResponseMessage response, int status, string code, string? message = null)
    {
        var (actual, error) = await Http.ErrorOf(response);
        Assert.True(status == actual, $"expected {status}, got {actual}: {error?.Error} {error?.Message}");
        Assert.Equal(code, error?.Error);
        if (message is not null) Assert.Contains(message, error!.Message);
    }

    private static async Task<List<AuditView>> AuditAsync(Fleet fleet) =>
        (await fleet.Host.Client(fleet.Admin).GetFromJsonAsync("/api/v1/audit?limit=1000", FleetJson.Default.ListAuditView))!;

    private static string WrongCode(Fleet fleet) =>
        ((int.Parse(Security.Totp.Code(fleet.AliceTotp!, Security.Totp.StepAt(fleet.Clock.GetUtcNow())),
            System.Globalization.CultureInfo.InvariantCulture) + 1) % 1_000_000).ToString("D6", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Guesses at one username until it locks out, each from a new source address and alternating instances: what each got
    /// (status and Retry-After seconds), in order. Each refused attempt waits out its Retry-After on the clock and tries again.
    /// </summary>
    private static async Task<List<string>> SprayAsync(Fleet fleet, string username, int guesses, int firstSource)
    {
        var seen = new List<string>();
        int source = firstSource;
        for (int guess = 0; guess < guesses;)
        {
            var response = await LoginAsync(fleet.From(source++), username, "not the password " + guess, "123456");
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                await AssertError(response, 429, "rate_limited", "too many failed logins");
                var retry = response.Headers.RetryAfter!.Delta!.Value;
                seen.Add($"429 retry {retry.TotalSeconds}");
                fleet.Clock.Advance(retry);
                continue;
            }
            await AssertError(response, 401, "unauthenticated", StaffService.LoginRefused);
            seen.Add("401");
            guess++;
        }
        return seen;
    }

    // ---- backoff and lockout

    [Fact]
    public async Task Password_spraying_one_account_meets_a_doubling_backoff_then_a_lockout_that_only_an_audited_unlock_lifts()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        // Ten guesses, each from its own address (the per-source backoff never applies): the account's own backoff and lockout do.
        var seen = await SprayAsync(fleet, "alice", 10, firstSource: 10);
        Assert.Equal(["401", "401", "401", "401", "429 retry 1", "401", "429 retry 2", "401", "429 retry 4", "401", "429 retry 8", "401",
            "429 retry 16", "401", "429 retry 32", "401"], seen);
        var audit = await AuditAsync(fleet);
        Assert.Single(audit, a => a is { Action: "staff.lockout", Actor: "controller", Target: "alice" } && a.Detail!.StartsWith("10 failed logins"));

        // Locked: the right password and a fresh code get the same refusal as a guess (after the backoff).
        fleet.Clock.Advance(TimeSpan.FromMinutes(2));
        await AssertError(await LoginAsync(fleet.From(40), "alice", Password, fleet.NextCode()), 401, "unauthenticated", StaffService.LoginRefused);
        var staff = await fleet.Host.Client(fleet.Admin).GetFromJsonAsync("/api/v1/staff", FleetJson.Default.ListStaffView);
        Assert.True(staff!.Single(s => s.Username == "alice").Locked);

        // Only an admin unlocks (vera is a viewer), with the reason in the audit log; then alice logs in.
        string veraToken = await fleet.Host.Staff.CreateApiTokenAsync((await fleet.Host.Staff.ListStaffAsync(default)).Single(s => s.Username == "vera"), "v", default);
        await AssertError(await fleet.Next().Client(veraToken).PostAsJsonAsync("/api/v1/staff/alice/unlock", new ReasonRequest("me"),
            FleetJson.Default.ReasonRequest), 403, "forbidden");
        var unlocked = await fleet.Next().Client(fleet.Admin).PostAsJsonAsync("/api/v1/staff/alice/unlock", new ReasonRequest("called from her desk"),
            FleetJson.Default.ReasonRequest);
        Assert.False((await unlocked.Content.ReadFromJsonAsync(FleetJson.Default.StaffView))!.Locked);
        Assert.Contains(await AuditAsync(fleet), a => a is { Action: "staff.unlock", Actor: "alice", Target: "alice", Reason: "called from her desk" }
                                                      && a.Detail!.Contains("11 failed logins forgotten"));
        var login = await LoginAsync(fleet.From(41), "alice", Password, fleet.NextCode());
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        Assert.Null((await login.Content.ReadFromJsonAsync(FleetJson.Default.LoginResponse))!.TotpEnrollmentRequired);
        await AssertError(await fleet.Host.Client(fleet.Admin).PostAsJsonAsync("/api/v1/staff/nobody/unlock", new ReasonRequest(null),
            FleetJson.Default.ReasonRequest), 404, "not_found");
    }

    [Fact]
    public async Task Spraying_an_unknown_username_meets_the_same_backoff_as_a_staff_members()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        var known = await SprayAsync(fleet, "alice", 12, firstSource: 10);
        var unknown = await SprayAsync(fleet, "alicia", 12, firstSource: 100);
        Assert.Equal(known, unknown);
        Assert.Contains("429 retry 64", unknown);   // still growing past the lockout: a locked account looks like any other
    }

    [Fact]
    public async Task Guessing_many_usernames_from_one_address_meets_a_backoff_for_that_address_only()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        var attacker = fleet.From(66, fleet.Host);   // the per-source backoff is each instance's own (addresses stay out of the database)
        for (int i = 0; i < FleetLimits.LoginFreeFailuresPerSource + 1; i++)
            await AssertError(await LoginAsync(attacker, $"user{i}", "not the password", null), 401, "unauthenticated");
        var refused = await LoginAsync(attacker, "user99", "not the password", null);
        await AssertError(refused, 429, "rate_limited", "too many failed logins");
        Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter!.Delta);
        // Another address logs in meanwhile; and once the wait is over the attacker's next guess is served (and doubles it).
        Assert.Equal(HttpStatusCode.OK, (await LoginAsync(fleet.From(67, fleet.Host), "alice", Password, fleet.NextCode())).StatusCode);
        fleet.Clock.Advance(TimeSpan.FromSeconds(1));
        await AssertError(await LoginAsync(attacker, "user100", "not the password", null), 401, "unauthenticated");
        refused = await LoginAsync(attacker, "user101", "not the password", null);
        Assert.Equal(TimeSpan.FromSeconds(2), refused.Headers.RetryAfter!.Delta);
    }

    // ---- one answer

    [Fact]
    public async Task Unknown_user_wrong_password_wrong_missing_or_replayed_TOTP_and_locked_or_deactivated_accounts_get_byte_identical_refusals()
    {
        // Lockout at 6 so the test reaches it; backoff off so every attempt is answered (the backoff has its own tests).
        await using var fleet = await StartAsync(o => o with { LoginLockoutThreshold = 6, RateLimits = o.RateLimits with { Enabled = false } });
        if (fleet is null) return;
        var refusals = new Dictionary<string, HttpResponseMessage>();
        int source = 10;
        refusals["unknown user"] = await LoginAsync(fleet.From(source++), "mallory", Password, fleet.NextCode());
        refusals["wrong password"] = await LoginAsync(fleet.From(source++), "alice", "not the password", fleet.NextCode());
        refusals["wrong TOTP"] = await LoginAsync(fleet.From(source++), "alice", Password, WrongCode(fleet));
        refusals["missing TOTP"] = await LoginAsync(fleet.From(source++), "alice", Password, null);
        string code = fleet.NextCode();
        Assert.Equal(HttpStatusCode.OK, (await LoginAsync(fleet.From(source++), "alice", Password, code)).StatusCode);
        refusals["replayed TOTP"] = await LoginAsync(fleet.From(source++), "alice", Password, code);
        refusals["malformed TOTP"] = await LoginAsync(fleet.From(source++), "alice", Password, "12345x");
        refusals["password too long"] = await LoginAsync(fleet.From(source++), "alice", new string('x', FleetLimits.MaxPasswordLength + 1), fleet.NextCode());
        for (int i = 0; i < 6; i++) await LoginAsync(fleet.From(source++), "alice", "not the password", null);
        Assert.Contains(await AuditAsync(fleet), a => a is { Action: "staff.lockout", Target: "alice" });
        refusals["locked, right password and code"] = await LoginAsync(fleet.From(source++), "alice", Password, fleet.NextCode());
        await fleet.Host.Staff.CreateStaffAsync("test", "olga", Password, StaffRole.Viewer, default);
        await fleet.Host.Client(fleet.Admin).PostAsJsonAsync("/api/v1/staff/olga/deactivate", new ReasonRequest(null), FleetJson.Default.ReasonRequest);
        refusals["deactivated, right password"] = await LoginAsync(fleet.From(source++), "olga", Password, null);

        byte[] first = await refusals["unknown user"].Content.ReadAsByteArrayAsync();
        Assert.Equal($$"""{"error":"unauthenticated","message":"{{StaffService.LoginRefused}}"}""", System.Text.Encoding.UTF8.GetString(first));
        foreach (var (what, response) in refusals)
        {
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{what}: {response.StatusCode}");
            byte[] body = await response.Content.ReadAsByteArrayAsync();
            Assert.True(first.AsSpan().SequenceEqual(body), $"{what}: {System.Text.Encoding.UTF8.GetString(body)}");
            Assert.Equal(refusals["unknown user"].Content.Headers.ContentType, response.Content.Headers.ContentType);
            Assert.False(response.Headers.Contains("Retry-After"), what);
        }
    }

    [Fact]
    public async Task An_unknown_user_costs_the_password_hash_like_a_wrong_password()
    {
        await using var fleet = await StartAsync(o => o with { RateLimits = o.RateLimits with { Enabled = false }, LoginLockoutThreshold = 1000 });
        if (fleet is null) return;
        var client = fleet.Host.Client();
        const int Rounds = 9;
        var unknown = new List<double>();
        var wrong = new List<double>();
        var verify = new List<double>();
        string hash = Security.PasswordHasher.Hash(Password);
        await LoginAsync(client, "warm-up", "not the password", null);   // JIT, connection
        for (int i = 0; i < Rounds; i++)
        {
            // Interleaved, so a neighbour's build slows both kinds alike.
            var watch = Stopwatch.StartNew();
            await AssertError(await LoginAsync(client, $"nobody{i}", "not the password", null), 401, "unauthenticated");
            unknown.Add(watch.Elapsed.TotalMilliseconds);
            watch.Restart();
            await AssertError(await LoginAsync(client, "alice", "not the password", null), 401, "unauthenticated");
            wrong.Add(watch.Elapsed.TotalMilliseconds);
            watch.Restart();
            Security.PasswordHasher.Verify("not the password", hash);
            verify.Add(watch.Elapsed.TotalMilliseconds);
        }
        double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
        double u = Median(unknown), w = Median(wrong), v = Median(verify);
        output.WriteLine($"medians over {Rounds} rounds: unknown user {u:F0} ms, wrong password {w:F0} ms, one PBKDF2 verify {v:F0} ms; " +
                         $"unknown/wrong {u / w:F2}");
        // Both pay the hash (not a fast path for unknown users), and neither is far from the other: generous bounds, no flakes.
        Assert.True(u >= 0.5 * v, $"an unknown user's login ({u:F0} ms) does not pay the password hash ({v:F0} ms)");
        Assert.True(w >= 0.5 * v, $"a wrong password's login ({w:F0} ms) does not pay the password hash ({v:F0} ms)");
        Assert.InRange(u / w, 0.5, 2.0);
    }

    // ---- TOTP: once, and required

    [Fact]
    public async Task A_TOTP_code_is_accepted_once_even_later_in_its_step()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        string code = fleet.NextCode();
        Assert.Equal(HttpStatusCode.OK, (await LoginAsync(fleet.From(10), "alice", Password, code)).StatusCode);
        await AssertError(await LoginAsync(fleet.From(11), "alice", Password, code), 401, "unauthenticated", StaffService.LoginRefused);
        fleet.Clock.Advance(TimeSpan.FromSeconds(20));
        await AssertError(await LoginAsync(fleet.From(12), "alice", Password, code), 401, "unauthenticated", StaffService.LoginRefused);
        Assert.Equal(HttpStatusCode.OK, (await LoginAsync(fleet.From(13), "alice", Password, fleet.NextCode())).StatusCode);
    }

    [Fact]
    public async Task Concurrent_logins_with_one_TOTP_code_exactly_one_succeeds()
    {
        // No backoff: it would serialise the attempts before the code is checked; this is the code's own guard. No lockout either:
        // a loser whose attempt starts after the round's winner ended counts as a failure the winner did not forget.
        await using var fleet = await StartAsync(o => o with { RateLimits = o.RateLimits with { Enabled = false }, LoginLockoutThreshold = 1000 });
        if (fleet is null) return;
        for (int round = 0; round < 5; round++)
        {
            string code = fleet.NextCode();
            var responses = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => LoginAsync(fleet.From(10 + i), "alice", Password, code)));
            Assert.Equal(1, responses.Count(r => r.StatusCode == HttpStatusCode.OK));
            foreach (var refused in responses.Where(r => r.StatusCode != HttpStatusCode.OK))
                await AssertError(refused, 401, "unauthenticated", StaffService.LoginRefused);
        }
        Assert.Equal(5, (await AuditAsync(fleet)).Count(a => a is { Action: "staff.login", Actor: "alice" }));
    }

    [Fact]
    public async Task An_admin_without_TOTP_gets_a_session_that_can_only_enroll_it()
    {
        await using var fleet = await StartAsync(aliceTotp: false);
        if (fleet is null) return;
        var response = await LoginAsync(fleet.From(10), "alice", Password, null);
        var login = (await response.Content.ReadFromJsonAsync(FleetJson.Default.LoginResponse))!;
        Assert.True(login.TotpEnrollmentRequired);
        var session = fleet.Next().Client(login.Token);
        await AssertError(await session.GetAsync("/api/v1/machines"), 403, "totp_required");
        await AssertError(await session.GetAsync("/api/v1/staff"), 403, "totp_required");
        await AssertError(await session.GetAsync("/api/v1/events"), 403, "totp_required");
        await AssertError(await session.PostAsJsonAsync("/api/v1/me/tokens", new CreateTokenRequest("escape"), FleetJson.Default.CreateTokenRequest),
            403, "totp_required");
        await AssertError(await session.PostAsJsonAsync("/api/v1/customers", new CreateAccountRequest(null), FleetJson.Default.CreateAccountRequest),
            403, "totp_required");
        Assert.Equal(HttpStatusCode.OK, (await session.GetAsync("/api/v1/me")).StatusCode);
        // A viewer changes nothing: a password is enough. An admin's API token is no password login: it works.
        var vera = (await (await LoginAsync(fleet.From(11), "vera", Password, null)).Content.ReadFromJsonAsync(FleetJson.Default.LoginResponse))!;
        Assert.Null(vera.TotpEnrollmentRequired);
        Assert.Equal(HttpStatusCode.OK, (await fleet.Next().Client(vera.Token).GetAsync("/api/v1/machines")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await fleet.Next().Client(fleet.Admin).GetAsync("/api/v1/staff")).StatusCode);

        // The session enrolls TOTP; a password login without a code is then refused, with one it is a full session.
        var begin = (await (await session.PostAsync("/api/v1/me/totp", null)).Content.ReadFromJsonAsync(FleetJson.Default.TotpBeginResponse))!;
        byte[] secret = Security.Base32.Decode(begin.Secret);
        long step = Security.Totp.StepAt(fleet.Clock.GetUtcNow());
        Assert.Equal(HttpStatusCode.NoContent, (await session.PostAsJsonAsync("/api/v1/me/totp/confirm", new CodeRequest(Security.Totp.Code(secret, step)),
            FleetJson.Default.CodeRequest)).StatusCode);
        await AssertError(await LoginAsync(fleet.From(12), "alice", Password, null), 401, "unauthenticated", StaffService.LoginRefused);
        await AssertError(await LoginAsync(fleet.From(13), "alice", Password, Security.Totp.Code(secret, step)), 401, "unauthenticated");
        fleet.Clock.Advance(TimeSpan.FromSeconds(30));
        var full = (await (await LoginAsync(fleet.From(14), "alice", Password, Security.Totp.Code(secret, step + 1))).Content
            .ReadFromJsonAsync(FleetJson.Default.LoginResponse))!;
        Assert.Null(full.TotpEnrollmentRequired);
        Assert.Equal(HttpStatusCode.OK, (await fleet.Next().Client(full.Token).GetAsync("/api/v1/machines")).StatusCode);
        Assert.Contains(await AuditAsync(fleet), a => a is { Action: "staff.login", Actor: "alice", Detail: "TOTP enrollment only" });
    }

    [Fact]
    public async Task With_TOTP_optional_an_admin_logs_in_with_a_password_alone_and_every_start_is_audited()
    {
        string? database = await DatabaseAsync();
        if (database is null) return;
        var optional = (FleetOptions o) => o with { StaffTotp = StaffTotp.Optional };
        await (await FleetHost.StartAsync(database, optional)).DisposeAsync();
        await using var host = await FleetHost.StartAsync(database, optional);
        await host.Staff.CreateStaffAsync("test", "alice", Password, StaffRole.Admin, default);
        var login = await (await LoginAsync(host.Client(), "alice", Password, null)).Content.ReadFromJsonAsync(FleetJson.Default.LoginResponse);
        Assert.Null(login!.TotpEnrollmentRequired);
        Assert.Equal(HttpStatusCode.OK, (await host.Client(login.Token).GetAsync("/api/v1/machines")).StatusCode);
        var audit = await host.Client(login.Token).GetFromJsonAsync("/api/v1/audit", FleetJson.Default.ListAuditView);
        Assert.Equal(2, audit!.Count(a => a is { Action: "staff.totp-optional", Actor: "controller" }));
    }
}

public sealed class SqliteLoginTests(ITestOutputHelper output) : LoginTests(output), IDisposable
{
    private readonly SqliteDatabases databases = new("login");

    protected override bool SeveralInstances => false;

    protected override Task<string?> DatabaseAsync() => databases.NextAsync();

    public void Dispose() => databases.Dispose();
}

/// <summary>The same attacks on PostgreSQL with two controller instances on one database.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresLoginTests(ITestOutputHelper output) : LoginTests(output)
{
    protected override bool SeveralInstances => true;

    protected override Task<string?> DatabaseAsync() => PostgresDatabases.NextAsync();
}

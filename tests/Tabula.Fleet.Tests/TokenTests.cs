using System.Net;
using System.Net.Http.Json;
using Tabula.Fleet.Api;
using Tabula.Fleet.Core;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>
/// Issue 17, "Staff credentials and sessions → Tokens": each attack run against a real controller (Kestrel, and SQLite or
/// PostgreSQL: the derived classes at the end), each test on its own database and clock. docs/security.md lists them.
/// </summary>
public abstract class TokenTests
{
    /// <summary>A fresh database, or null when its server is not available (skip outside CI).</summary>
    protected abstract Task<string?> DatabaseAsync();

    private const string Password = FleetFixture.AdminPassword;


    protected sealed record Fleet(FleetHost Host, ManualClock Clock, string Admin, string Operator, string Viewer) : IAsyncDisposable
    {
        public HttpClient Client(string? token = null) => Host.Client(token);
        public ValueTask DisposeAsync() => Host.DisposeAsync();
    }

    protected async Task<Fleet?> StartAsync()
    {
        string? database = await DatabaseAsync();
        if (database is null) return null;
        var clock = new ManualClock();
        var host = await FleetHost.StartAsync(database, null, clock);
        var ct = CancellationToken.None;
        var admin = await host.Staff.CreateStaffAsync("test", "alice", Password, StaffRole.Admin, ct);
        var op = await host.Staff.CreateStaffAsync("test", "oscar", Password, StaffRole.Operator, ct);
        var viewer = await host.Staff.CreateStaffAsync("test", "vera", Password, StaffRole.Viewer, ct);
        return new Fleet(host, clock, await host.Staff.CreateApiTokenAsync(admin, "t", ct), await host.Staff.CreateApiTokenAsync(op, "t", ct),
            await host.Staff.CreateApiTokenAsync(viewer, "t", ct));
    }

    protected static async Task AssertError(HttpResponseMessage response, int status, string code, string? message = null)
    {
        var (actual, error) = await Http.ErrorOf(response);
        Assert.True(status == actual, $"expected {status}, got {actual}: {error?.Error} {error?.Message}");
        Assert.Equal(code, error?.Error);
        if (message is not null) Assert.Contains(message, error!.Message);
    }

    protected static async Task<TokenResponse> MintAsync(HttpClient admin, string name, string? expires = null, string? forUser = null)
    {
        var response = await admin.PostAsJsonAsync(forUser is null ? "/api/v1/me/tokens" : $"/api/v1/staff/{forUser}/tokens",
            new CreateTokenRequest(name, expires), FleetJson.Default.CreateTokenRequest);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync(FleetJson.Default.TokenResponse))!;
    }

    protected static async Task<TokenResponse> EnrollmentTokenAsync(HttpClient admin, CreateTokenRequest request)
    {
        var response = await admin.PostAsJsonAsync("/api/v1/enrollment-tokens", request, FleetJson.Default.CreateTokenRequest);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync(FleetJson.Default.TokenResponse))!;
    }

    protected static async Task<List<TokenView>> ListAsync(HttpClient staff) =>
        (await staff.GetFromJsonAsync("/api/v1/tokens", FleetJson.Default.ListTokenView))!;

    protected static async Task<string> LoginAsync(HttpClient anonymous, string username, string? totp = null)
    {
        var response = await anonymous.PostAsJsonAsync("/api/v1/login", new LoginRequest(username, Password, totp), FleetJson.Default.LoginRequest);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync(FleetJson.Default.LoginResponse))!.Token;
    }

    protected static async Task<HttpResponseMessage> NonceResponseAsync(HttpClient anonymous, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/relay/v1/enroll/nonce");
        request.Headers.Authorization = new("Bearer", token);
        return await anonymous.SendAsync(request);
    }

    protected static async Task<HttpResponseMessage> EnrollAsync(HttpClient anonymous, TestRelay relay, string token) =>
        await TestRelay.PostEnrollAsync(anonymous, token, relay.Body(await TestRelay.NonceAsync(anonymous, token), Http.NewDigest()));

    // ---- minting, expiry, last use

    [Fact]
    public async Task Operators_and_viewers_cannot_mint_API_tokens_for_themselves_or_anyone()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        foreach (string token in new[] { fleet.Operator, fleet.Viewer })
        {
            var client = fleet.Client(token);
            await AssertError(await client.PostAsJsonAsync("/api/v1/me/tokens", new CreateTokenRequest("mine"), FleetJson.Default.CreateTokenRequest),
                403, "forbidden");
            await AssertError(await client.PostAsJsonAsync("/api/v1/staff/alice/tokens", new CreateTokenRequest("hers"), FleetJson.Default.CreateTokenRequest),
                403, "forbidden");
        }
        Assert.DoesNotContain(await ListAsync(fleet.Client(fleet.Admin)), t => t.Name is "mine" or "hers");

        // An admin mints for itself and for a viewer; the viewer's token acts as the viewer (an operator's action is 403).
        var own = await MintAsync(fleet.Client(fleet.Admin), "laptop");
        Assert.StartsWith("api-", own.Id);
        Assert.Equal(HttpStatusCode.OK, (await fleet.Client(own.Token).GetAsync("/api/v1/staff")).StatusCode);
        var vera = await MintAsync(fleet.Client(fleet.Admin), "vera's laptop", forUser: "vera");
        await AssertError(await fleet.Client(vera.Token).PostAsJsonAsync("/api/v1/customers", new CreateAccountRequest(null),
            FleetJson.Default.CreateAccountRequest), 403, "forbidden");
        var audit = await fleet.Client(fleet.Admin).GetFromJsonAsync("/api/v1/audit", FleetJson.Default.ListAuditView);
        Assert.Contains(audit!, a => a is { Action: "token.create", Actor: "alice" } && a.Target == vera.Id && a.Detail!.Contains("owner=vera"));
    }

    [Fact]
    public async Task API_tokens_expire_after_90_days_by_default_and_never_only_when_asked()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        var admin = fleet.Client(fleet.Admin);
        var start = fleet.Clock.GetUtcNow();
        var byDefault = await MintAsync(admin, "default");
        Assert.Equal(start + TimeSpan.FromDays(90), byDefault.ExpiresAt!.Value, TimeSpan.FromSeconds(1));
        var shortLived = await MintAsync(admin, "short", "30m");
        var never = await MintAsync(admin, "forever", "never");
        Assert.Null(never.ExpiresAt);
        foreach (string bad in new[] { "yesterday", "0d", "-5d", "2001-01-01T00:00:00Z", "99999d", new string('9', 50) })
            await AssertError(await admin.PostAsJsonAsync("/api/v1/me/tokens", new CreateTokenRequest("bad", bad), FleetJson.Default.CreateTokenRequest),
                400, "invalid_input");

        fleet.Clock.Advance(TimeSpan.FromMinutes(31));
        await AssertError(await fleet.Client(shortLived.Token).GetAsync("/api/v1/me"), 401, "unauthenticated");
        Assert.Equal(HttpStatusCode.OK, (await fleet.Client(byDefault.Token).GetAsync("/api/v1/me")).StatusCode);

        fleet.Clock.Advance(TimeSpan.FromDays(90));
        await AssertError(await fleet.Client(byDefault.Token).GetAsync("/api/v1/me"), 401, "unauthenticated");
        Assert.Equal(HttpStatusCode.OK, (await fleet.Client(never.Token).GetAsync("/api/v1/me")).StatusCode);
        // (The test's own bootstrap tokens expired with it: the never-expiring one lists.)
        var listed = await ListAsync(fleet.Client(never.Token));
        Assert.Null(listed.Single(t => t.Id == never.Id).ExpiresAt);
        Assert.Equal(byDefault.ExpiresAt, listed.Single(t => t.Id == byDefault.Id).ExpiresAt);
    }

    [Fact]
    public async Task Last_use_is_recorded_and_written_at_most_once_a_minute()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        var admin = fleet.Client(fleet.Admin);
        var minted = await MintAsync(admin, "watched", "never");
        Assert.Null((await ListAsync(admin)).Single(t => t.Id == minted.Id).LastUsedAt);

        var first = fleet.Clock.GetUtcNow();
        var client = fleet.Client(minted.Token);
        for (int i = 0; i < 20; i++) (await client.GetAsync("/api/v1/me")).EnsureSuccessStatusCode();
        Assert.Equal(first, (await ListAsync(admin)).Single(t => t.Id == minted.Id).LastUsedAt!.Value, TimeSpan.FromMilliseconds(1));

        fleet.Clock.Advance(TimeSpan.FromSeconds(59));
        (await client.GetAsync("/api/v1/me")).EnsureSuccessStatusCode();
        Assert.Equal(first, (await ListAsync(admin)).Single(t => t.Id == minted.Id).LastUsedAt!.Value, TimeSpan.FromMilliseconds(1));

        fleet.Clock.Advance(TimeSpan.FromSeconds(2));
        (await client.GetAsync("/api/v1/me")).EnsureSuccessStatusCode();
        Assert.Equal(fleet.Clock.GetUtcNow(), (await ListAsync(admin)).Single(t => t.Id == minted.Id).LastUsedAt!.Value, TimeSpan.FromMilliseconds(1));
    }

    // ---- list and revoke

    [Fact]
    public async Task Every_kind_of_token_is_listed_without_its_secret_and_a_revoked_one_is_refused_on_the_next_request()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        var admin = fleet.Client(fleet.Admin);
        string session = await LoginAsync(fleet.Client(), "oscar");
        var api = await MintAsync(admin, "pipeline", forUser: "oscar");
        var enrollment = await EnrollmentTokenAsync(admin, new CreateTokenRequest("rack 1"));

        var response = await admin.GetAsync("/api/v1/tokens");
        string raw = await response.Content.ReadAsStringAsync();
        foreach (string secret in new[] { session, api.Token, enrollment.Token, fleet.Admin, fleet.Operator, fleet.Viewer })
            Assert.DoesNotContain(secret[4..], raw);
        var listed = (await response.Content.ReadFromJsonAsync(FleetJson.Default.ListTokenView))!;
        Assert.Contains(listed, t => t is { Kind: "session", Owner: "oscar", Role: "operator" } && t.ExpiresAt is not null);
        Assert.Contains(listed, t => t is { Kind: "api", Owner: "oscar", Name: "pipeline" } && t.Id == api.Id);
        Assert.Contains(listed, t => t is { Kind: "enrollment", Owner: "alice", Name: "rack 1" } && t.Id == enrollment.Id);
        Assert.Equal(3, listed.Count(t => t is { Kind: "api", Name: "t" }));

        // A viewer sees only their own; revoking someone else's is 403, their own is fine.
        var viewer = fleet.Client(fleet.Viewer);
        Assert.All(await ListAsync(viewer), t => Assert.Equal("vera", t.Owner));
        await AssertError(await viewer.DeleteAsync($"/api/v1/tokens/{api.Id}"), 403, "forbidden");
        await AssertError(await viewer.DeleteAsync($"/api/v1/tokens/{enrollment.Id}"), 403, "forbidden");
        await AssertError(await admin.DeleteAsync("/api/v1/tokens/api-x"), 400, "invalid_input");
        await AssertError(await admin.DeleteAsync("/api/v1/tokens/api-999999"), 404, "not_found");

        string sessionId = listed.Single(t => t.Kind == "session").Id;
        foreach (string id in new[] { sessionId, api.Id!, enrollment.Id! })
            Assert.Equal(HttpStatusCode.OK, (await admin.DeleteAsync($"/api/v1/tokens/{id}?reason=attack%20test")).StatusCode);
        await AssertError(await fleet.Client(session).GetAsync("/api/v1/me"), 401, "unauthenticated");
        await AssertError(await fleet.Client(api.Token).GetAsync("/api/v1/me"), 401, "unauthenticated");
        await AssertError(await NonceResponseAsync(fleet.Client(), enrollment.Token), 401, "unauthenticated");
        var audit = await admin.GetFromJsonAsync("/api/v1/audit", FleetJson.Default.ListAuditView);
        Assert.Equal(3, audit!.Count(a => a is { Action: "token.revoke", Reason: "attack test" }));

        // A viewer revokes their own token: it stops at once too.
        string veraId = (await ListAsync(viewer)).Single(t => t.Kind == "api").Id;
        Assert.Equal(HttpStatusCode.OK, (await viewer.DeleteAsync($"/api/v1/tokens/{veraId}")).StatusCode);
        await AssertError(await viewer.GetAsync("/api/v1/me"), 401, "unauthenticated");
    }

    // ---- deactivation and roles

    [Fact]
    public async Task A_deactivated_staff_member_loses_login_sessions_tokens_and_open_event_streams_at_once()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        var admin = fleet.Client(fleet.Admin);
        // oscar is an operator: his password login needs TOTP (issue 17) for a session that can open the event stream.
        var oscar = (await fleet.Host.Staff.ListStaffAsync(default)).Single(s => s.Username == "oscar");
        var (secret, step) = await FleetFixture.EnrollTotpAsync(fleet.Host.Staff, oscar, fleet.Clock.GetUtcNow());
        string session = await LoginAsync(fleet.Client(), "oscar", Security.Totp.Code(secret, step + 1));
        var api = await MintAsync(admin, "oscar's laptop", forUser: "oscar");

        // The dashboard's event stream, opened with the session before the deactivation.
        using var events = fleet.Client(session);
        using var stream = await events.GetAsync("/api/v1/events", HttpCompletionOption.ResponseHeadersRead);
        var reader = new StreamReader(await stream.Content.ReadAsStreamAsync());
        Assert.Equal("event: machines", await reader.ReadLineAsync());
        Assert.StartsWith("data: ", await reader.ReadLineAsync());
        Assert.Equal("", await reader.ReadLineAsync());

        await AssertError(await fleet.Client(fleet.Operator).PostAsJsonAsync("/api/v1/staff/vera/deactivate", new ReasonRequest("no"),
            FleetJson.Default.ReasonRequest), 403, "forbidden");
        var deactivated = await admin.PostAsJsonAsync("/api/v1/staff/oscar/deactivate", new ReasonRequest("left the company"), FleetJson.Default.ReasonRequest);
        Assert.False((await deactivated.Content.ReadFromJsonAsync(FleetJson.Default.StaffView))!.Active);

        foreach (string token in new[] { session, api.Token, fleet.Operator })
            await AssertError(await fleet.Client(token).GetAsync("/api/v1/me"), 401, "unauthenticated");
        await AssertError(await fleet.Client().PostAsJsonAsync("/api/v1/login", new LoginRequest("oscar", Password, null), FleetJson.Default.LoginRequest),
            401, "unauthenticated");
        Assert.DoesNotContain(await ListAsync(admin), t => t.Owner == "oscar");
        // The open stream ends at its next event: a machine change wakes it.
        await new TestRelay().EnrollAsync(fleet.Client(), (await EnrollmentTokenAsync(admin, new CreateTokenRequest("wake"))).Token, Http.NewDigest());
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (await reader.ReadLineAsync(timeout.Token) is { } line)
            Assert.DoesNotContain("data:", line);

        var audit = await admin.GetFromJsonAsync("/api/v1/audit", FleetJson.Default.ListAuditView);
        // The bootstrap API token, the session and the minted one.
        Assert.Contains(audit!, a => a is { Action: "staff.deactivate", Actor: "alice", Target: "oscar", Reason: "left the company" }
                                     && a.Detail!.Contains("3 tokens revoked"));

        // Reactivated: the password works again, the old tokens stay dead.
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsJsonAsync("/api/v1/staff/oscar/activate", new ReasonRequest("back"),
            FleetJson.Default.ReasonRequest)).StatusCode);
        fleet.Clock.Advance(TimeSpan.FromSeconds(60));
        await LoginAsync(fleet.Client(), "oscar", Security.Totp.Code(secret, step + 2));
        await AssertError(await fleet.Client(api.Token).GetAsync("/api/v1/me"), 401, "unauthenticated");
    }

    [Fact]
    public async Task Role_changes_hold_from_the_next_request_are_audited_and_never_leave_the_fleet_without_an_admin()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        var admin = fleet.Client(fleet.Admin);
        var vera = fleet.Client(fleet.Viewer);
        var account = new CreateAccountRequest(null);
        await AssertError(await vera.PostAsJsonAsync("/api/v1/customers", account, FleetJson.Default.CreateAccountRequest), 403, "forbidden");
        await AssertError(await vera.PostAsJsonAsync("/api/v1/staff/vera/role", new RoleRequest("admin", null), FleetJson.Default.RoleRequest),
            403, "forbidden");
        await AssertError(await fleet.Client(fleet.Operator).PostAsJsonAsync("/api/v1/staff/oscar/role", new RoleRequest("admin", null),
            FleetJson.Default.RoleRequest), 403, "forbidden");

        var promoted = await admin.PostAsJsonAsync("/api/v1/staff/vera/role", new RoleRequest("operator", "on call"), FleetJson.Default.RoleRequest);
        Assert.Equal("operator", (await promoted.Content.ReadFromJsonAsync(FleetJson.Default.StaffView))!.Role);
        Assert.Equal(HttpStatusCode.Created, (await vera.PostAsJsonAsync("/api/v1/customers", account, FleetJson.Default.CreateAccountRequest)).StatusCode);
        (await admin.PostAsJsonAsync("/api/v1/staff/vera/role", new RoleRequest("viewer", "off call"), FleetJson.Default.RoleRequest)).EnsureSuccessStatusCode();
        await AssertError(await vera.PostAsJsonAsync("/api/v1/customers", account, FleetJson.Default.CreateAccountRequest), 403, "forbidden");

        // alice is the only admin: she can neither step down nor switch herself off.
        await AssertError(await admin.PostAsJsonAsync("/api/v1/staff/alice/role", new RoleRequest("viewer", null), FleetJson.Default.RoleRequest),
            409, "illegal_transition");
        await AssertError(await admin.PostAsJsonAsync("/api/v1/staff/alice/deactivate", new ReasonRequest(null), FleetJson.Default.ReasonRequest),
            409, "illegal_transition");
        await AssertError(await admin.PostAsJsonAsync("/api/v1/staff/vera/role", new RoleRequest("root", null), FleetJson.Default.RoleRequest),
            400, "invalid_input");
        await AssertError(await admin.PostAsJsonAsync("/api/v1/staff/nobody/role", new RoleRequest("viewer", null), FleetJson.Default.RoleRequest),
            404, "not_found");

        var audit = await admin.GetFromJsonAsync("/api/v1/audit", FleetJson.Default.ListAuditView);
        Assert.Contains(audit!, a => a is { Action: "staff.role", Actor: "alice", Target: "vera", Detail: "viewer -> operator", Reason: "on call" });
        Assert.Contains(audit!, a => a is { Action: "staff.role", Target: "vera", Detail: "operator -> viewer" });
    }

    // ---- enrollment tokens

    [Fact]
    public async Task A_single_use_enrollment_token_enrolls_once_and_a_forged_attempt_does_not_spend_it()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        var anonymous = fleet.Client();
        var token = await EnrollmentTokenAsync(fleet.Client(fleet.Admin), new CreateTokenRequest("one shot", SingleUse: true));

        // A forged enrollment (signed by another key) is refused before the token is spent.
        var first = new TestRelay();
        var forged = first.Body(await TestRelay.NonceAsync(anonymous, token.Token), Http.NewDigest(), signWith: Tabula.Packaging.Crypto.Ed25519.NewPrivateKey());
        await AssertError(await TestRelay.PostEnrollAsync(anonymous, token.Token, forged), 401, "forged_enrollment");

        Assert.Equal(HttpStatusCode.OK, (await EnrollAsync(anonymous, first, token.Token)).StatusCode);
        // Neither another machine nor the one that used it gets a nonce with it again.
        await AssertError(await NonceResponseAsync(anonymous, token.Token), 401, "unauthenticated", "single-use");
        var listed = (await ListAsync(fleet.Client(fleet.Admin))).Single(t => t.Id == token.Id);
        Assert.True(listed.SingleUse);
        Assert.NotNull(listed.UsedAt);
        Assert.Equal(first.MachineId, listed.Machine);
    }

    [Fact]
    public async Task An_enrollment_token_bound_to_machine_A_is_refused_for_machine_B()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        var anonymous = fleet.Client();
        TestRelay a = new(), b = new();
        var token = await EnrollmentTokenAsync(fleet.Client(fleet.Admin), new CreateTokenRequest("a only", Machine: a.MachineId));
        await AssertError(await EnrollAsync(anonymous, b, token.Token), 401, "unauthenticated", "bound to another machine");
        Assert.Equal(HttpStatusCode.OK, (await EnrollAsync(anonymous, a, token.Token)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await EnrollAsync(anonymous, a, token.Token)).StatusCode);   // A re-enrolls at every boot
        await AssertError(await EnrollAsync(anonymous, b, token.Token), 401, "unauthenticated", "bound to another machine");
        await AssertError(await fleet.Client(fleet.Admin).PostAsJsonAsync("/api/v1/enrollment-tokens", new CreateTokenRequest("bad", Machine: "A-MACHINE"),
            FleetJson.Default.CreateTokenRequest), 400, "invalid_input");
        Assert.Null((await fleet.Host.Client(fleet.Admin).GetFromJsonAsync($"/api/v1/machines", FleetJson.Default.ListMachineView))!
            .SingleOrDefault(m => m.Id == b.MachineId));
    }

    [Fact]
    public async Task An_expired_enrollment_token_is_refused_and_the_default_lifetime_is_90_days()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        var admin = fleet.Client(fleet.Admin);
        var shortLived = await EnrollmentTokenAsync(admin, new CreateTokenRequest("an hour", Expires: "1h"));
        // Today's body ({"name": …}, what the lab and E2E send) still works and gets the default lifetime.
        var response = await admin.PostAsJsonAsync("/api/v1/enrollment-tokens", new NameRequest("lab relay-1"), FleetJson.Default.NameRequest);
        var byDefault = (await response.Content.ReadFromJsonAsync(FleetJson.Default.TokenResponse))!;
        Assert.Equal(fleet.Clock.GetUtcNow() + TimeSpan.FromDays(90), byDefault.ExpiresAt!.Value, TimeSpan.FromSeconds(1));
        var relay = new TestRelay();
        byte[] nonce = await TestRelay.NonceAsync(fleet.Client(), shortLived.Token);

        fleet.Clock.Advance(TimeSpan.FromMinutes(61));
        await AssertError(await TestRelay.PostEnrollAsync(fleet.Client(), shortLived.Token, relay.Body(nonce, Http.NewDigest())), 401,
            "unauthenticated", "expired");
        await AssertError(await NonceResponseAsync(fleet.Client(), shortLived.Token), 401, "unauthenticated", "expired");
        Assert.Equal(HttpStatusCode.OK, (await EnrollAsync(fleet.Client(), relay, byDefault.Token)).StatusCode);
        fleet.Clock.Advance(TimeSpan.FromDays(90));
        await AssertError(await TestRelay.PostEnrollAsync(fleet.Client(), byDefault.Token, relay.Body(RandomNonce(), Http.NewDigest())), 401,
            "unauthenticated", "expired");
    }

    private static byte[] RandomNonce() => System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);

    // ---- TOTP re-enrollment

    [Fact]
    public async Task Enrolling_TOTP_again_needs_a_current_code_and_the_old_one_holds_until_the_new_one_is_confirmed()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        var clock = fleet.Clock;
        string session = await LoginAsync(fleet.Client(), "vera");
        var me = fleet.Client(session);
        var begin = await (await me.PostAsync("/api/v1/me/totp", null)).Content.ReadFromJsonAsync(FleetJson.Default.TotpBeginResponse);
        byte[] old = Security.Base32.Decode(begin!.Secret);
        long step = Security.Totp.StepAt(clock.GetUtcNow());
        Assert.Equal(HttpStatusCode.NoContent, (await me.PostAsJsonAsync("/api/v1/me/totp/confirm", new CodeRequest(Security.Totp.Code(old, step)),
            FleetJson.Default.CodeRequest)).StatusCode);

        // The attack: a stolen session (no authenticator) enrolls the thief's authenticator.
        await AssertError(await me.PostAsync("/api/v1/me/totp", null), 403, "forbidden", "current code");
        clock.Advance(TimeSpan.FromSeconds(30));
        step = Security.Totp.StepAt(clock.GetUtcNow());
        string wrong = ((int.Parse(Security.Totp.Code(old, step), System.Globalization.CultureInfo.InvariantCulture) + 1) % 1_000_000).ToString("D6",
            System.Globalization.CultureInfo.InvariantCulture);
        await AssertError(await me.PostAsJsonAsync("/api/v1/me/totp", new CodeRequest(wrong), FleetJson.Default.CodeRequest), 403, "forbidden");
        await AssertError(await me.PostAsJsonAsync("/api/v1/me/totp", new CodeRequest(Security.Totp.Code(old, step - 1)), FleetJson.Default.CodeRequest),
            403, "forbidden");   // the code that enabled it: used before

        // With a current code: a new secret waits; the old one still logs in until the new one is confirmed.
        var again = await me.PostAsJsonAsync("/api/v1/me/totp", new CodeRequest(Security.Totp.Code(old, step)), FleetJson.Default.CodeRequest);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        byte[] fresh = Security.Base32.Decode((await again.Content.ReadFromJsonAsync(FleetJson.Default.TotpBeginResponse))!.Secret);
        clock.Advance(TimeSpan.FromSeconds(30));
        step = Security.Totp.StepAt(clock.GetUtcNow());
        await LoginAsync(fleet.Client(), "vera", Security.Totp.Code(old, step));
        clock.Advance(TimeSpan.FromSeconds(30));
        step = Security.Totp.StepAt(clock.GetUtcNow());
        Assert.Equal(HttpStatusCode.NoContent, (await me.PostAsJsonAsync("/api/v1/me/totp/confirm", new CodeRequest(Security.Totp.Code(fresh, step)),
            FleetJson.Default.CodeRequest)).StatusCode);
        clock.Advance(TimeSpan.FromSeconds(30));
        step = Security.Totp.StepAt(clock.GetUtcNow());
        await AssertError(await fleet.Client().PostAsJsonAsync("/api/v1/login", new LoginRequest("vera", Password, Security.Totp.Code(old, step)),
            FleetJson.Default.LoginRequest), 401, "unauthenticated");
        await LoginAsync(fleet.Client(), "vera", Security.Totp.Code(fresh, step + 1));

        var audit = await fleet.Client(fleet.Admin).GetFromJsonAsync("/api/v1/audit", FleetJson.Default.ListAuditView);
        Assert.Contains(audit!, a => a is { Action: "totp.reenroll", Actor: "vera" });
        Assert.Contains(audit!, a => a is { Action: "totp.replace", Actor: "vera" });
    }
}

public sealed class SqliteTokenTests : TokenTests, IDisposable
{
    private readonly SqliteDatabases databases = new("tokens");

    protected override Task<string?> DatabaseAsync() => databases.NextAsync();

    public void Dispose() => databases.Dispose();
}

/// <summary>The same attacks on PostgreSQL, plus those that need several connections or instances at once.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresTokenTests : TokenTests
{
    protected override Task<string?> DatabaseAsync() => PostgresDatabases.NextAsync();

    [Fact]
    public async Task Two_concurrent_enrollments_with_one_single_use_token_exactly_one_succeeds()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        await using var other = await FleetHost.StartAsync(fleet.Host.Database);
        for (int round = 0; round < 5; round++)
        {
            var token = await EnrollmentTokenAsync(fleet.Client(fleet.Admin), new CreateTokenRequest($"race {round}", SingleUse: true));
            // Both nonces first, so the two enrollments race only on the token.
            var relays = new[] { new TestRelay(), new TestRelay() };
            var clients = new[] { fleet.Client(), other.Client() };
            var bodies = new List<Protocol.EnrollBody>();
            for (int i = 0; i < 2; i++) bodies.Add(relays[i].Body(await TestRelay.NonceAsync(clients[i], token.Token), Http.NewDigest()));
            var responses = await Task.WhenAll(Enumerable.Range(0, 2).Select(i => TestRelay.PostEnrollAsync(clients[i], token.Token, bodies[i])));
            Assert.Equal(1, responses.Count(r => r.StatusCode == HttpStatusCode.OK));
            await AssertError(responses.Single(r => r.StatusCode != HttpStatusCode.OK), 401, "unauthenticated", "single-use");
            var machines = (await fleet.Client(fleet.Admin).GetFromJsonAsync("/api/v1/machines", FleetJson.Default.ListMachineView))!;
            Assert.Single(machines, m => relays.Any(r => r.MachineId == m.Id));
        }
    }

    [Fact]
    public async Task A_token_revoked_or_a_staff_member_deactivated_on_one_instance_is_refused_by_the_other_on_its_next_request()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        await using var other = await FleetHost.StartAsync(fleet.Host.Database);
        var minted = await MintAsync(fleet.Client(fleet.Admin), "two instances", forUser: "vera");
        string session = await LoginAsync(other.Client(), "oscar");
        Assert.Equal(HttpStatusCode.OK, (await other.Client(minted.Token).GetAsync("/api/v1/me")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await other.Client(session).GetAsync("/api/v1/me")).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await fleet.Client(fleet.Admin).DeleteAsync($"/api/v1/tokens/{minted.Id}")).StatusCode);
        await AssertError(await other.Client(minted.Token).GetAsync("/api/v1/me"), 401, "unauthenticated");

        (await fleet.Client(fleet.Admin).PostAsJsonAsync("/api/v1/staff/oscar/deactivate", new ReasonRequest(null), FleetJson.Default.ReasonRequest))
            .EnsureSuccessStatusCode();
        await AssertError(await other.Client(session).GetAsync("/api/v1/me"), 401, "unauthenticated");
        await AssertError(await other.Client(fleet.Operator).GetAsync("/api/v1/me"), 401, "unauthenticated");
    }

    [Fact]
    public async Task Two_admins_demoting_each_other_at_once_leave_one_admin()
    {
        await using var fleet = await StartAsync();
        if (fleet is null) return;
        await using var other = await FleetHost.StartAsync(fleet.Host.Database);
        var admin = fleet.Client(fleet.Admin);
        (await admin.PostAsJsonAsync("/api/v1/staff/oscar/role", new RoleRequest("admin", null), FleetJson.Default.RoleRequest)).EnsureSuccessStatusCode();
        var responses = await Task.WhenAll(
            admin.PostAsJsonAsync("/api/v1/staff/oscar/role", new RoleRequest("viewer", "coup"), FleetJson.Default.RoleRequest),
            other.Client(fleet.Operator).PostAsJsonAsync("/api/v1/staff/alice/deactivate", new ReasonRequest("coup"), FleetJson.Default.ReasonRequest));
        var staff = (await fleet.Host.Staff.ListStaffAsync(CancellationToken.None)).Where(s => s.Active && s.Role == StaffRole.Admin).ToList();
        Assert.Single(staff);
        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.OK);
        // The loser is refused: 409 (the other is the last admin), 403 (its actor was demoted first) or 401 (switched off first).
        Assert.Single(responses, r => r.StatusCode is HttpStatusCode.Conflict or HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized);
    }
}

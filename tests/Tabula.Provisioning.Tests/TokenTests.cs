using System.Net;
using System.Text.Json;
using Tabula.Provisioning.Core;
using Tabula.Provisioning.Tests.Support;

namespace Tabula.Provisioning.Tests;

/// <summary>
/// Issue 17, "Tokens", on the provisioning server's own token store (tokens.json): staff tokens expire, record their last
/// use, and are listed and revoked with `tabula provisioning token list|revoke` while the real server runs.
/// </summary>
public sealed class TokenTests
{
    sealed class ManualClock : TimeProvider
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        public override DateTimeOffset GetUtcNow() => now;
        public void Advance(TimeSpan by) => now += by;
    }

    static Task<ProcessOutput> Cli(params string[] args) => TabulaCli.RunAsync(args);

    static async Task<TokenView[]> ListAsync(TestServer server)
    {
        var listed = await Cli("provisioning", "token", "list", "--store", server.StoreDirectory, "--json");
        Assert.True(listed.ExitCode == 0, listed.Stderr);
        return JsonSerializer.Deserialize(listed.Stdout, ProvisioningJsonContext.Default.TokenViewArray)!;
    }

    [Fact]
    public async Task A_token_revoked_with_the_cli_is_refused_by_the_running_server_on_its_next_request_and_audited()
    {
        await using var server = await TestServer.StartAsync();
        var created = await Cli("provisioning", "token", "create", "--store", server.StoreDirectory, "--name", "laptop", "--role", "channels");
        Assert.True(created.ExitCode == 0, created.Stderr);
        string token = created.Stdout.Trim();
        using var client = server.Client(token);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/channels")).StatusCode);

        var listed = await Cli("provisioning", "token", "list", "--store", server.StoreDirectory);
        Assert.DoesNotContain(token[4..], listed.Stdout);
        var entry = (await ListAsync(server)).Single(t => t.Name == "laptop");
        Assert.Equal(["channels"], entry.Roles);
        Assert.DoesNotContain(entry.Id, token);

        var revoked = await Cli("provisioning", "token", "revoke", entry.Id, "--store", server.StoreDirectory, "--reason", "laptop lost");
        Assert.True(revoked.ExitCode == 0, revoked.Stderr);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/v1/channels")).StatusCode);
        Assert.DoesNotContain(await ListAsync(server), t => t.Name == "laptop");
        Assert.Equal(2, (await Cli("provisioning", "token", "revoke", entry.Id, "--store", server.StoreDirectory)).ExitCode);

        using var staff = server.Client(server.Token);
        string audit = await staff.GetStringAsync("/v1/audit");
        Assert.Contains("token.revoke", audit);
        Assert.Contains("laptop lost", audit);
    }

    [Fact]
    public async Task Tokens_expire_after_90_days_by_default_never_only_when_asked_and_an_expired_one_is_refused()
    {
        var clock = new ManualClock();
        await using var server = await TestServer.StartAsync(time: clock);
        var made = new Dictionary<string, string>();
        foreach (var (name, expires) in new[] { ("default", (string?)null), ("forever", "never"), ("short", "2h") })
        {
            var created = await Cli(["provisioning", "token", "create", "--store", server.StoreDirectory, "--name", name,
                .. expires is null ? Array.Empty<string>() : ["--expires", expires]]);
            Assert.True(created.ExitCode == 0, created.Stderr);
            made[name] = created.Stdout.Trim();
        }
        foreach (string bad in new[] { "0d", "yesterday", "2001-01-01", "99999d" })
            Assert.Equal(2, (await Cli("provisioning", "token", "create", "--store", server.StoreDirectory, "--name", "bad", "--expires", bad)).ExitCode);

        var listed = await ListAsync(server);
        Assert.Equal(DateTimeOffset.UtcNow + TimeSpan.FromDays(90), listed.Single(t => t.Name == "default").ExpiresAt!.Value, TimeSpan.FromMinutes(1));
        Assert.Null(listed.Single(t => t.Name == "forever").ExpiresAt);

        clock.Advance(TimeSpan.FromHours(3));
        using (var client = server.Client(made["short"]))
            Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/v1/channels")).StatusCode);
        using (var client = server.Client(made["default"]))
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/channels")).StatusCode);
        clock.Advance(TimeSpan.FromDays(90));
        using (var client = server.Client(made["default"]))
            Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/v1/channels")).StatusCode);
        using (var client = server.Client(made["forever"]))
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/channels")).StatusCode);
    }

    [Fact]
    public async Task Last_use_is_listed_and_written_at_most_once_a_minute()
    {
        var clock = new ManualClock();
        await using var server = await TestServer.StartAsync(time: clock);
        var (token, record) = StaffTokens.Create("watched", clock.GetUtcNow(), StaffRoles.All, clock.GetUtcNow() + TimeSpan.FromDays(1));
        await server.Store.AddTokenAsync(record, default);
        Assert.Null((await ListAsync(server)).Single(t => t.Id == record.Id).LastUsedAt);

        var first = clock.GetUtcNow();
        using var client = server.Client(token);
        for (int i = 0; i < 10; i++) (await client.GetAsync("/v1/channels")).EnsureSuccessStatusCode();
        Assert.Equal(first, (await ListAsync(server)).Single(t => t.Id == record.Id).LastUsedAt!.Value, TimeSpan.FromSeconds(1));
        string uses = Path.Combine(server.StoreDirectory, "token-uses.json");
        var written = File.GetLastWriteTimeUtc(uses);

        clock.Advance(TimeSpan.FromSeconds(59));
        (await client.GetAsync("/v1/channels")).EnsureSuccessStatusCode();
        Assert.Equal(written, File.GetLastWriteTimeUtc(uses));
        clock.Advance(TimeSpan.FromSeconds(2));
        (await client.GetAsync("/v1/channels")).EnsureSuccessStatusCode();
        Assert.Equal(clock.GetUtcNow(), (await ListAsync(server)).Single(t => t.Id == record.Id).LastUsedAt!.Value, TimeSpan.FromSeconds(1));
    }
}

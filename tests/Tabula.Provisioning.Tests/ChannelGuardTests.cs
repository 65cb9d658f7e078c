using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Tabula.Provisioning.Core;
using Tabula.Provisioning.Tests.Support;

namespace Tabula.Provisioning.Tests;

/// <summary>
/// Issue 17, provisioning: publishing and moving channels are separate roles, and a channel is not moved back to an
/// older signed release unless staff force it with a reason (audited). Each attack runs against the real server.
/// </summary>
public sealed class ChannelGuardTests
{
    static async Task<string> TokenAsync(TestServer server, string name, params string[] roles)
    {
        var (token, record) = StaffTokens.Create(name, DateTimeOffset.UtcNow, roles);
        await server.Store.AddTokenAsync(record, default);
        return token;
    }

    static async Task<HttpResponseMessage> MoveAsync(TestServer server, string token, string archive, bool force = false, string? reason = null)
    {
        using var client = server.Client(token);
        return await client.PutAsJsonAsync("/v1/channels/stable", new { archive_sha256 = archive, force, reason });
    }

    static async Task<string> CodeAsync(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString()!;

    [Fact]
    public async Task A_publish_only_token_cannot_move_a_channel_or_publish_into_one()
    {
        await using var server = await TestServer.StartAsync();
        var genuine = server.Packages.Create(trustedSigners: 2, label: "genuine", release: 2);
        (await server.PublishAsync(genuine, "stable")).Dispose();
        string pipeline = await TokenAsync(server, "pipeline", StaffRoles.Publish);
        var other = server.Packages.Create(trustedSigners: 2, label: "other", release: 3);

        // The attack: the build pipeline's token (stolen) tries to point the fleet at a package of its choosing.
        using (var published = await server.PublishAsync(other, "stable", pipeline))
        {
            Assert.Equal(HttpStatusCode.Forbidden, published.StatusCode);
            Assert.Equal("forbidden", await CodeAsync(published));
        }
        using (var published = await server.PublishAsync(other, channel: null, pipeline))
            Assert.Equal(HttpStatusCode.Created, published.StatusCode);       // publishing alone is its job
        using (var moved = await MoveAsync(server, pipeline, other.ArchiveSha256))
            Assert.Equal(HttpStatusCode.Forbidden, moved.StatusCode);
        Assert.Equal(genuine.ArchiveSha256, (await server.Store.FindChannelAsync("stable", default))!.ArchiveSha256);

        string release = await TokenAsync(server, "release-manager", StaffRoles.Channels);
        using (var moved = await MoveAsync(server, release, other.ArchiveSha256))
            Assert.Equal(HttpStatusCode.OK, moved.StatusCode);
        Assert.Equal(other.ArchiveSha256, (await server.Store.FindChannelAsync("stable", default))!.ArchiveSha256);
    }

    [Fact]
    public async Task Moving_a_channel_to_an_older_release_is_refused_unless_forced_with_a_reason_and_audited()
    {
        await using var server = await TestServer.StartAsync();
        var old = server.Packages.Create(trustedSigners: 2, label: "release-1", release: 1);
        var current = server.Packages.Create(trustedSigners: 2, label: "release-2", release: 2);
        (await server.PublishAsync(old, "stable")).Dispose();
        (await server.PublishAsync(current, "stable")).Dispose();
        Assert.Equal(2, (await server.Store.FindPackageAsync(Digest(current.ArchiveSha256), default))!.Release);

        using (var moved = await MoveAsync(server, server.Token, old.ArchiveSha256))
        {
            Assert.Equal(HttpStatusCode.Conflict, moved.StatusCode);
            Assert.Equal("channel_downgrade", await CodeAsync(moved));
        }
        // Publishing the old package again into the channel is the same move, and refused the same way.
        using (var republished = await server.PublishAsync(old, "stable"))
            Assert.Equal(HttpStatusCode.Conflict, republished.StatusCode);
        using (var noReason = await MoveAsync(server, server.Token, old.ArchiveSha256, force: true))
            Assert.Equal(HttpStatusCode.BadRequest, noReason.StatusCode);
        Assert.Equal(current.ArchiveSha256, (await server.Store.FindChannelAsync("stable", default))!.ArchiveSha256);

        using (var forced = await MoveAsync(server, server.Token, old.ArchiveSha256, force: true, reason: "release 2 breaks NIC X"))
            Assert.Equal(HttpStatusCode.OK, forced.StatusCode);
        Assert.Equal(old.ArchiveSha256, (await server.Store.FindChannelAsync("stable", default))!.ArchiveSha256);
        var audit = await server.Store.ReadAuditAsync(10, default);
        var last = audit.Last(e => e.Target == "stable");
        Assert.Equal(("channel.force-move", "release 2 breaks NIC X", current.ArchiveSha256), (last.Action, last.Reason, last.From));

        // Forward again needs no force.
        using (var forward = await MoveAsync(server, server.Token, current.ArchiveSha256))
            Assert.Equal(HttpStatusCode.OK, forward.StatusCode);
    }

    static Tabula.Packaging.Sha256Digest Digest(string hex) => Tabula.Packaging.Sha256Digest.TryParse(hex, out var d) ? d : throw new ArgumentException(hex);
}

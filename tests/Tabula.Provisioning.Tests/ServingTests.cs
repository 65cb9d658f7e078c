using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using Tabula.Packaging;
using Tabula.Provisioning.Core;
using Tabula.Provisioning.Tests.Support;

namespace Tabula.Provisioning.Tests;

public sealed class ServingTests
{
    [Fact]
    public async Task Published_package_is_served_by_channel_and_by_digest_with_os_pkg_url_at_the_archive()
    {
        await using var server = await TestServer.StartAsync();
        var package = server.Packages.Create(trustedSigners: 2);
        using var published = await server.PublishAsync(package);
        Assert.Equal(HttpStatusCode.Created, published.StatusCode);

        using var client = server.Client();
        byte[] byChannel = await client.GetByteArrayAsync("/channels/stable.json");
        byte[] byDigest = await client.GetByteArrayAsync($"/ospkg/{package.ArchiveSha256}.json");
        Assert.Equal(byChannel, byDigest);
        var served = Descriptor.Parse(byChannel);
        Assert.Equal($"/ospkg/{package.ArchiveSha256}.zip", served.OsPackageUrl);
        Assert.Equal(Descriptor.Parse(package.Descriptor).Signatures, served.Signatures);

        // The URL resolves (RFC 3986) against the descriptor URL to the archive, byte for byte.
        var archiveUrl = new Uri(new Uri(client.BaseAddress!, "/channels/stable.json"), served.OsPackageUrl);
        Assert.Equal(package.Archive, await client.GetByteArrayAsync(archiveUrl));
        Assert.Equal(package.Archive, await client.GetByteArrayAsync("/channels/stable.zip"));
    }

    [Fact]
    public async Task Archive_download_has_strong_digest_etag_honours_if_none_match_and_serves_ranges()
    {
        await using var server = await TestServer.StartAsync();
        var package = server.Packages.Create(trustedSigners: 2, size: 200_000);
        (await server.PublishAsync(package)).Dispose();
        using var client = server.Client();
        string url = $"/ospkg/{package.ArchiveSha256}.zip";

        using var full = await client.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, full.StatusCode);
        Assert.Equal($"\"{package.ArchiveSha256}\"", full.Headers.ETag!.Tag);
        Assert.False(full.Headers.ETag.IsWeak);
        Assert.Equal(package.Archive.Length, full.Content.Headers.ContentLength);
        Assert.Equal("application/zip", full.Content.Headers.ContentType!.MediaType);

        using var conditional = new HttpRequestMessage(HttpMethod.Get, url);
        conditional.Headers.IfNoneMatch.Add(new EntityTagHeaderValue($"\"{package.ArchiveSha256}\""));
        using var notModified = await client.SendAsync(conditional);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);

        using var ranged = new HttpRequestMessage(HttpMethod.Get, url);
        ranged.Headers.Range = new RangeHeaderValue(1000, 1999);
        using var partial = await client.SendAsync(ranged);
        Assert.Equal(HttpStatusCode.PartialContent, partial.StatusCode);
        Assert.Equal(1000, partial.Content.Headers.ContentLength);
        Assert.Equal(package.Archive[1000..2000], await partial.Content.ReadAsByteArrayAsync());

        using var head = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, url));
        Assert.Equal(package.Archive.Length, head.Content.Headers.ContentLength);
    }

    [Fact]
    public async Task Moving_a_channel_changes_the_served_descriptor_and_is_audited_with_who_from_and_to()
    {
        await using var server = await TestServer.StartAsync();
        var first = server.Packages.Create(trustedSigners: 2, label: "one");
        var second = server.Packages.Create(trustedSigners: 3, label: "two");
        (await server.PublishAsync(first)).Dispose();
        (await server.PublishAsync(second, channel: null)).Dispose();
        using var staff = server.Client(server.Token);

        using var move = await staff.PutAsync("/v1/channels/stable", Json($"{{\"archive_sha256\":\"{second.ArchiveSha256}\"}}"));
        Assert.Equal(HttpStatusCode.OK, move.StatusCode);
        var served = Descriptor.Parse(await server.Client().GetByteArrayAsync("/channels/stable.json"));
        Assert.Equal($"/ospkg/{second.ArchiveSha256}.zip", served.OsPackageUrl);

        using var audit = JsonDocument.Parse(await staff.GetStringAsync("/v1/audit"));
        var last = audit.RootElement.EnumerateArray().Last();
        Assert.Equal("alice", last.GetProperty("actor").GetString());
        Assert.Equal("stable", last.GetProperty("target").GetString());
        Assert.Equal(first.ArchiveSha256, last.GetProperty("from").GetString());
        Assert.Equal(second.ArchiveSha256, last.GetProperty("to").GetString());
        Assert.DoesNotContain("127.0.0.1", audit.RootElement.GetRawText());
    }

    [Fact]
    public async Task Machine_gets_the_package_and_host_config_of_its_most_specific_group()
    {
        await using var server = await TestServer.StartAsync();
        var stable = server.Packages.Create(trustedSigners: 2, label: "stable");
        var testing = server.Packages.Create(trustedSigners: 2, label: "testing");
        (await server.PublishAsync(stable, "stable")).Dispose();
        (await server.PublishAsync(testing, "testing")).Dispose();
        await server.Store.PutGroupAsync("default", Bytes("""{"id":"default","selector":{},"channel":"stable"}"""), default);
        await server.Store.PutGroupAsync("relay-07", Bytes("""
            {"id":"relay-07","selector":{"mac":"52:54:00:12:34:56"},"channel":"testing",
             "host_config":{"network_mode":"dhcp","ospkg_pointer":"https://prov.example/machines/ospkg.json?mac=52-54-00-12-34-56"}}
            """), default);
        using var client = server.Client();

        var mine = Descriptor.Parse(await client.GetByteArrayAsync("/machines/ospkg.json?mac=52-54-00-12-34-56"));
        Assert.Equal($"/ospkg/{testing.ArchiveSha256}.zip", mine.OsPackageUrl);
        var other = Descriptor.Parse(await client.GetByteArrayAsync("/machines/ospkg.json?mac=52:54:00:00:00:01"));
        Assert.Equal($"/ospkg/{stable.ArchiveSha256}.zip", other.OsPackageUrl);

        using var config = JsonDocument.Parse(await client.GetStringAsync("/machines/host-config.json?mac=52:54:00:12:34:56"));
        Assert.Equal("dhcp", config.RootElement.GetProperty("network_mode").GetString());
        using var noConfig = await client.GetAsync("/machines/host-config.json?mac=52:54:00:00:00:01");
        Assert.Equal(HttpStatusCode.NotFound, noConfig.StatusCode);
        Assert.Equal(testing.Descriptor.Length > 0, (await client.GetAsync("/groups/relay-07/ospkg.json")).IsSuccessStatusCode);
    }

    // Issue 17: group host configurations are served without authentication and copied to static mirrors, so one
    // holding a relay's identity key or enrollment token handed both to anyone who asked with the group's MAC.
    [Theory]
    [InlineData("\"tabula_relay\":{\"identity_key\":\"SECRET-IDENTITY\",\"enrollment_token\":\"tet_SECRET\"},")]
    [InlineData("\"identity\":\"SECRET-IDENTITY\",")]
    [InlineData("\"authentication\":\"SECRET-AUTH\",")]
    public async Task A_group_host_config_holding_a_secret_is_refused_and_never_served(string secretField)
    {
        await using var server = await TestServer.StartAsync();
        (await server.PublishAsync(server.Packages.Create(trustedSigners: 2, label: "stable"), "stable")).Dispose();
        string group = "{\"id\":\"leaky\",\"selector\":{},\"channel\":\"stable\",\"host_config\":{" + secretField +
            "\"network_mode\":\"dhcp\",\"ospkg_pointer\":\"https://prov.example/machines/ospkg.json\"}}";
        var refused = await Assert.ThrowsAsync<ProvisioningException>(() => server.Store.PutGroupAsync("leaky", Bytes(group), default));
        Assert.Contains("secret", refused.Message);
        Assert.DoesNotContain("SECRET", refused.Message);

        // The attack: the file is dropped into groups/ by hand (as operators may), and a machine asks for its config.
        File.WriteAllText(Path.Combine(server.StoreDirectory, "groups", "leaky.json"), group);
        using var client = server.Client();
        foreach (string path in new[] { "/machines/host-config.json?mac=52:54:00:12:34:56", "/groups/leaky/host-config.json", "/machines/ospkg.json?mac=52:54:00:12:34:56" })
        {
            using var response = await client.GetAsync(path);
            Assert.False(response.IsSuccessStatusCode, $"{path} answered {(int)response.StatusCode}");
            Assert.DoesNotContain("SECRET", await response.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public void Credentials_in_a_group_host_configs_package_url_are_refused()
    {
        var e = Assert.Throws<ProvisioningException>(() => MachineGroups.Parse(
            """{"id":"g","selector":{},"channel":"stable","host_config":{"network_mode":"dhcp","ospkg_pointer":"https://user:pw@p/x.json"}}"""u8, "g"));
        Assert.Contains("credentials in a package URL", e.Message);
        Assert.DoesNotContain("pw@", e.Message);
    }

    [Fact]
    public async Task Machine_without_matching_group_and_without_default_gets_a_json_404()
    {
        await using var server = await TestServer.StartAsync();
        await server.Store.PutGroupAsync("one", Bytes("""{"id":"one","selector":{"hostname":"relay-01"},"channel":"stable"}"""), default);
        using var response = await server.Client().GetAsync("/machines/ospkg.json?hostname=relay-02");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("no_matching_group", await ErrorCode(response));
    }

    [Fact]
    public async Task Health_and_metrics_report_counts_and_bytes_but_no_client_addresses_or_labels()
    {
        await using var server = await TestServer.StartAsync();
        var package = server.Packages.Create(trustedSigners: 2);
        (await server.PublishAsync(package)).Dispose();
        using var client = server.Client();
        await client.GetByteArrayAsync($"/ospkg/{package.ArchiveSha256}.zip");
        (await client.GetAsync("/machines/ospkg.json?mac=52:54:00:12:34:56")).Dispose();
        Assert.Contains("\"ok\"", await client.GetStringAsync("/healthz"));

        string metrics = await client.GetStringAsync("/metrics");
        Assert.Contains("tabula_provisioning_requests_total{endpoint=\"archive\",code=\"200\"} 1", metrics);
        Assert.Contains($"tabula_provisioning_response_bytes_total{{endpoint=\"archive\"}} {package.Archive.Length}", metrics);
        Assert.Contains("tabula_provisioning_uploads_total{outcome=\"accepted\"} 1", metrics);
        Assert.DoesNotContain("127.0.0.1", metrics);
        Assert.DoesNotContain("52:54", metrics);
    }

    internal static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");
    internal static byte[] Bytes(string text) => System.Text.Encoding.UTF8.GetBytes(text);

    internal static async Task<string?> ErrorCode(HttpResponseMessage response)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.True(body.RootElement.TryGetProperty("message", out _));
        return body.RootElement.GetProperty("error").GetString();
    }
}

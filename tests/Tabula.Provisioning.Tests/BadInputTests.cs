using System.Net;
using System.Text.Json;
using Tabula.Provisioning.Tests.Support;

namespace Tabula.Provisioning.Tests;

public sealed class BadInputTests
{
    [Fact]
    public async Task Package_under_the_threshold_is_refused_with_422_and_nothing_is_stored()
    {
        await using var server = await TestServer.StartAsync();
        var package = server.Packages.Create(trustedSigners: 1, addStranger: true);
        using var response = await server.PublishAsync(package);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("package_refused", body.RootElement.GetProperty("error").GetString());
        var verification = body.RootElement.GetProperty("verification");
        Assert.Equal(2, verification.GetProperty("found").GetInt32());
        Assert.Equal(1, verification.GetProperty("valid").GetInt32());
        Assert.Equal(2, verification.GetProperty("required").GetInt32());
        await AssertStoreEmpty(server);
    }

    [Fact]
    public async Task Unsigned_package_is_refused_with_422_and_nothing_is_stored()
    {
        await using var server = await TestServer.StartAsync();
        var package = server.Packages.Create(trustedSigners: 0);
        using var response = await server.PublishAsync(package);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal("package_refused", await ServingTests.ErrorCode(response));
        await AssertStoreEmpty(server);
    }

    [Fact]
    public async Task Archive_that_differs_from_the_signed_one_is_refused()
    {
        await using var server = await TestServer.StartAsync();
        var package = server.Packages.Create(trustedSigners: 3);
        byte[] tampered = package.Archive.ToArray();
        tampered[^100] ^= 1;
        using var response = await server.PublishAsync(package with { Archive = tampered });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        await AssertStoreEmpty(server);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("{\"version\": 2, \"os_pkg_url\": \"\", \"certificates\": null, \"signatures\": null}")]
    [InlineData("{\"version\": 1, \"certificates\": [\"a\"], \"signatures\": []}")]
    [InlineData("{\"version\": \"1\"}")]
    public async Task Malformed_descriptor_gives_400_with_a_json_error(string descriptor)
    {
        await using var server = await TestServer.StartAsync();
        using var client = server.Client(server.Token);
        using var response = await client.PostAsync("/v1/packages",
            TestServer.Upload(ServingTests.Bytes(descriptor), new ByteArrayContent([1, 2, 3])));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("malformed_descriptor", await ServingTests.ErrorCode(response));
        await AssertStoreEmpty(server);
    }

    [Fact]
    public async Task Upload_that_is_not_multipart_or_lacks_a_part_gives_400()
    {
        await using var server = await TestServer.StartAsync();
        using var client = server.Client(server.Token);
        using var raw = await client.PostAsync("/v1/packages", ServingTests.Json("{}"));
        Assert.Equal(HttpStatusCode.BadRequest, raw.StatusCode);
        Assert.Equal("malformed_request", await ServingTests.ErrorCode(raw));

        var onlyDescriptor = new MultipartFormDataContent { { new ByteArrayContent(server.Packages.Create(2).Descriptor), "descriptor" } };
        using var missing = await client.PostAsync("/v1/packages", onlyDescriptor);
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Equal("malformed_request", await ServingTests.ErrorCode(missing));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("tbl_wrong")]
    [InlineData("not-even-the-format")]
    public async Task Missing_or_wrong_token_gives_401_and_nothing_is_stored(string? token)
    {
        await using var server = await TestServer.StartAsync();
        var package = server.Packages.Create(trustedSigners: 2);
        using var client = server.Client(token);
        using var response = await client.PostAsync("/v1/packages?channel=stable",
            TestServer.Upload(package.Descriptor, new ByteArrayContent(package.Archive)));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("unauthenticated", await ServingTests.ErrorCode(response));
        using var move = await client.PutAsync("/v1/channels/stable", ServingTests.Json("{}"));
        Assert.Equal(HttpStatusCode.Unauthorized, move.StatusCode);
        await AssertStoreEmpty(server);
    }

    [Fact]
    public async Task Oversized_archive_gives_413_and_nothing_is_stored()
    {
        await using var server = await TestServer.StartAsync(o => o.Limits.MaxArchiveBytes = 64 * 1024);
        var package = server.Packages.Create(trustedSigners: 2, size: 200_000);
        // Streamed without a Content-Length, so the limit must hold while reading, not just up front.
        using var client = server.Client(server.Token);
        var archive = new StreamContent(new NoLengthStream(package.Archive));
        using var response = await client.PostAsync("/v1/packages?channel=stable", TestServer.Upload(package.Descriptor, archive));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("too_large", await ServingTests.ErrorCode(response));
        await AssertStoreEmpty(server);
    }

    [Fact]
    public async Task Oversized_channel_move_body_gives_413()
    {
        await using var server = await TestServer.StartAsync();
        using var client = server.Client(server.Token);
        using var response = await client.PutAsync("/v1/channels/stable", ServingTests.Json(new string(' ', 100_000)));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [Theory]
    [InlineData("/ospkg/0000000000000000000000000000000000000000000000000000000000000000.zip", 404, "not_found")]
    [InlineData("/ospkg/0000000000000000000000000000000000000000000000000000000000000000.json", 404, "not_found")]
    [InlineData("/ospkg/ABCDEF.zip", 400, "invalid_name")]
    [InlineData("/channels/nosuch.json", 404, "not_found")]
    [InlineData("/channels/Stable.json", 400, "invalid_name")]
    [InlineData("/channels/..%2F..%2Fetc%2Fpasswd.json", 400, "invalid_name")]
    [InlineData("/channels/..%2Ftokens.json", 400, "invalid_name")]
    [InlineData("/groups/..%2F..%2Ftokens/ospkg.json", 400, "invalid_name")]
    [InlineData("/machines/ospkg.json?mac=../../etc", 400, "invalid_name")]
    [InlineData("/machines/ospkg.json?ip=10.0.0.1", 400, "invalid_name")]
    [InlineData("/sha256/anything", 404, "not_found")]
    [InlineData("/tokens.json", 404, "not_found")]
    public async Task Unknown_digests_and_path_tricks_give_json_errors(string path, int status, string code)
    {
        await using var server = await TestServer.StartAsync();
        using var response = await server.Client().GetAsync(path);
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal(code, await ServingTests.ErrorCode(response));
    }

    [Fact]
    public async Task Moving_a_channel_to_an_unknown_package_gives_404_and_changes_nothing()
    {
        await using var server = await TestServer.StartAsync();
        using var client = server.Client(server.Token);
        using var response = await client.PutAsync("/v1/channels/stable",
            ServingTests.Json($"{{\"archive_sha256\":\"{new string('a', 64)}\"}}"));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Empty(await server.Store.ListChannelsAsync(default));
        Assert.Empty(await server.Store.ReadAuditAsync(10, default));
    }

    [Fact]
    public async Task Upload_slower_than_the_minimum_rate_is_cut_and_nothing_is_stored()
    {
        await using var server = await TestServer.StartAsync(o =>
        {
            o.Limits.MinUploadBytesPerSecond = 64 * 1024;
            o.Limits.MinRateGraceSeconds = 2;
        });
        var package = server.Packages.Create(trustedSigners: 2, size: 100_000);
        using var client = server.Client(server.Token);
        var slow = new StreamContent(new SlowStream(package.Archive, bytesPerRead: 100, delay: TimeSpan.FromMilliseconds(50)));
        var started = DateTime.UtcNow;
        try
        {
            using var response = await client.PostAsync("/v1/packages?channel=stable", TestServer.Upload(package.Descriptor, slow));
            Assert.False(response.IsSuccessStatusCode);
        }
        catch (HttpRequestException)
        {
            // Kestrel may reset the connection instead of answering: either way the upload is refused.
        }
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(20));
        await AssertStoreEmpty(server);
    }

    [Fact]
    public async Task Too_many_staff_requests_are_answered_429_with_a_json_error()
    {
        await using var server = await TestServer.StartAsync(o => o.Limits.StaffRequestsPerMinute = 3);
        using var client = server.Client("tbl_wrong");
        var statuses = new List<HttpStatusCode>();
        for (int i = 0; i < 5; i++)
        {
            using var response = await client.GetAsync("/v1/channels");
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
                Assert.Equal("rate_limited", await ServingTests.ErrorCode(response));
        }
        Assert.Equal([HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized,
            HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], statuses);
    }

    static async Task AssertStoreEmpty(TestServer server)
    {
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(server.StoreDirectory, "sha256")));
        Assert.Empty(await server.Store.ListPackagesAsync(default));
        Assert.Empty(await server.Store.ListChannelsAsync(default));
        // Staging is cleaned as the request ends; allow the server a moment to finish after answering.
        for (int i = 0; i < 50 && Directory.EnumerateFiles(Path.Combine(server.StoreDirectory, "tmp")).Any(); i++)
            await Task.Delay(100);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(server.StoreDirectory, "tmp")));
    }
}

/// <summary>A stream that hides its length, so HttpClient sends it chunked.</summary>
sealed class NoLengthStream(byte[] data) : MemoryStream(data)
{
    public override bool CanSeek => false;
}

/// <summary>A client that sends a few bytes at a time: a slowloris upload.</summary>
sealed class SlowStream(byte[] data, int bytesPerRead, TimeSpan delay) : Stream
{
    int position;
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct)
    {
        await Task.Delay(delay, ct);
        int n = Math.Min(Math.Min(count, bytesPerRead), data.Length - position);
        Array.Copy(data, position, buffer, offset, n);
        position += n;
        return n;
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

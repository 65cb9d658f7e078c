using System.Net;
using Tabula.Provisioning.Storage;
using Tabula.Provisioning.Tests.Support;

namespace Tabula.Provisioning.Tests;

/// <summary>
/// A workspace made entirely with the real `tabula` CLI: root and signer keys (`keygen`), a trust policy with a
/// threshold of two, a dev TLS CA (`provisioning tls init`), a staff token (`provisioning token create`) and a
/// server config. Shared by the tests in <see cref="CliTests"/>; each test starts its own server process.
/// </summary>
public sealed class CliWorkspace : IAsyncLifetime
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("tabula-cli-").FullName;
    public string Token { get; private set; } = "";
    public string Ca => Path.Combine(Dir, "tls", "ca.pem");

    public async Task InitializeAsync()
    {
        await Must("keygen", "root", "--out", "root");
        await Must("keygen", "leaf", "--root-key", "root.key", "--root-cert", "root.pem", "--out", "signer1");
        await Must("keygen", "leaf", "--root-key", "root.key", "--root-cert", "root.pem", "--out", "signer2");
        Directory.CreateDirectory(Path.Combine(Dir, "trust"));
        File.Copy(Path.Combine(Dir, "root.pem"), Path.Combine(Dir, "trust", "ospkg_signing_root.pem"));
        await File.WriteAllTextAsync(Path.Combine(Dir, "trust", "trust_policy.json"),
            """{"ospkg_signature_threshold": 2, "ospkg_fetch_method": "network"}""");
        await Must("provisioning", "tls", "init", "--out", "tls");
        await File.WriteAllBytesAsync(Path.Combine(Dir, "vmlinuz"), System.Security.Cryptography.RandomNumberGenerator.GetBytes(300_000));
        await File.WriteAllTextAsync(Path.Combine(Dir, "initramfs.cpio"), "initramfs");
    }

    /// <summary>A fresh store and config for one test; returns the config path.</summary>
    public async Task<string> NewServerConfigAsync(string name)
    {
        string store = Path.Combine(Dir, name + "-store");
        Token = (await Must("provisioning", "token", "create", "--store", store, "--name", "alice")).Stdout.Trim();
        string config = Path.Combine(Dir, name + ".json");
        await File.WriteAllTextAsync(config, $$"""
            { "Listen": "https://127.0.0.1:0", "StoreDirectory": "{{name}}-store", "TrustPolicyDirectory": "trust",
              "Tls": { "CertificatePath": "tls/server.pem", "KeyPath": "tls/server.key" } }
            """);
        return config;
    }

    /// <summary>`ospkg create` then `ospkg sign` once per signer; returns NAME (NAME.json, NAME.zip in Dir).</summary>
    public async Task<string> PackageAsync(string name, int signers, string label)
    {
        await Must("ospkg", "create", "--kernel", "vmlinuz", "--initramfs", "initramfs.cpio", "--label", label, "--out", name);
        for (int i = 1; i <= signers; i++)
            await Must("ospkg", "sign", "--key", $"signer{i}.key", "--cert", $"signer{i}.pem", name + ".json");
        return name;
    }

    public Task<ProcessOutput> Publish(Uri server, string name, string? channel = "stable", string? token = null)
    {
        var args = new List<string> { "publish", name + ".json", name + ".zip", "--server", server.ToString(), "--ca", Ca };
        if (channel is not null)
            args.AddRange(["--channel", channel]);
        return TabulaCli.RunAsync(args, Dir, new Dictionary<string, string> { ["TABULA_TOKEN"] = token ?? Token });
    }

    public async Task<ProcessOutput> Must(params string[] args)
    {
        var result = await TabulaCli.RunAsync(args, Dir);
        Assert.True(result.ExitCode == 0, $"tabula {string.Join(' ', args)} exited {result.ExitCode}: {result.Stderr}");
        return result;
    }

    public Task DisposeAsync()
    {
        Directory.Delete(Dir, recursive: true);
        return Task.CompletedTask;
    }
}

public sealed class CliTests(CliWorkspace ws) : IClassFixture<CliWorkspace>
{
    [Fact]
    public async Task Package_signed_with_the_cli_is_published_with_the_cli_and_served_over_https()
    {
        string config = await ws.NewServerConfigAsync("publish");
        await using var server = await ServerProcess.StartAsync(ws.Dir, config);
        await ws.PackageAsync("good", signers: 2, label: "good");

        var published = await ws.Publish(server.Url, "good");
        Assert.True(published.ExitCode == 0, published.Stderr);
        Assert.Contains("2 valid signatures, 2 required", published.Stdout);
        string archiveHex = System.Text.RegularExpressions.Regex.Match(published.Stdout, "sha256:([0-9a-f]{64})").Groups[1].Value;
        Assert.Equal(64, archiveHex.Length);

        using var client = TestServer.PinnedClient(server.Url, ws.Ca);
        byte[] served = await client.GetByteArrayAsync("/channels/stable.json");
        Assert.Equal($"/ospkg/{archiveHex}.zip", Tabula.Packaging.Descriptor.Parse(served).OsPackageUrl);
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(ws.Dir, "good.zip")),
            await client.GetByteArrayAsync($"/ospkg/{archiveHex}.zip"));

        // The served descriptor still verifies with the packaging CLI against the same root.
        await File.WriteAllBytesAsync(Path.Combine(ws.Dir, "served.json"), served);
        await ws.Must("ospkg", "verify", "--descriptor", "served.json", "--archive", "good.zip", "--roots", "root.pem", "--threshold", "2");

        var listed = await TabulaCli.RunAsync(["provisioning", "channel", "list", "--server", server.Url.ToString(), "--ca", ws.Ca],
            ws.Dir, new Dictionary<string, string> { ["TABULA_TOKEN"] = ws.Token });
        Assert.Contains($"stable\tsha256:{archiveHex}", listed.Stdout);
        Assert.DoesNotContain("127.0.0.1", server.Log.Replace("listening on https://127.0.0.1", ""));
    }

    [Fact]
    public async Task Cli_publish_of_an_under_threshold_package_exits_1_and_a_wrong_token_exits_2()
    {
        string config = await ws.NewServerConfigAsync("refuse");
        await using var server = await ServerProcess.StartAsync(ws.Dir, config);
        await ws.PackageAsync("weak", signers: 1, label: "weak");

        var refused = await ws.Publish(server.Url, "weak");
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("1 found, 1 valid, 2 required", refused.Stderr);

        await ws.PackageAsync("strong", signers: 2, label: "strong");
        var wrongToken = await ws.Publish(server.Url, "strong", token: "tbl_not-a-real-token");
        Assert.Equal(2, wrongToken.ExitCode);
        Assert.Contains("401", wrongToken.Stderr);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(ws.Dir, "refuse-store", "sha256")));
    }

    [Fact]
    public async Task Killing_the_server_during_an_upload_leaves_a_consistent_store_after_restart()
    {
        string config = await ws.NewServerConfigAsync("crash");
        string store = Path.Combine(ws.Dir, "crash-store");
        await ws.PackageAsync("before", signers: 2, label: "before");
        await ws.PackageAsync("during", signers: 2, label: "during");
        string beforeHex;
        {
            await using var server = await ServerProcess.StartAsync(ws.Dir, config);
            var first = await ws.Publish(server.Url, "before");
            Assert.True(first.ExitCode == 0, first.Stderr);
            beforeHex = (await new FileStore(store).FindChannelAsync("stable", default))!.ArchiveSha256;

            // Send the descriptor and half the archive, then hold the rest back and kill the server.
            byte[] archive = await File.ReadAllBytesAsync(Path.Combine(ws.Dir, "during.zip"));
            var gate = new TaskCompletionSource();
            var halfway = new HalfThenWaitStream(archive, gate.Task);
            using var client = TestServer.PinnedClient(server.Url, ws.Ca, ws.Token);
            var upload = client.PostAsync("/v1/packages?channel=stable", TestServer.Upload(
                await File.ReadAllBytesAsync(Path.Combine(ws.Dir, "during.json")), new StreamContent(halfway)));
            string tmp = Path.Combine(store, "tmp");
            for (int i = 0; i < 100 && !Directory.EnumerateFiles(tmp).Any(f => new FileInfo(f).Length > 0); i++)
                await Task.Delay(50);
            Assert.NotEmpty(Directory.EnumerateFiles(tmp)); // a torn upload really is on disk, in staging
            await server.KillAsync();
            gate.SetResult();
            await Assert.ThrowsAnyAsync<Exception>(() => upload);
        }

        await using (var restarted = await ServerProcess.StartAsync(ws.Dir, config))
        {
            var check = await TabulaCli.RunAsync(["provisioning", "check", "--store", store], ws.Dir);
            Assert.True(check.ExitCode == 0, check.Stdout + check.Stderr);
            Assert.Empty(Directory.EnumerateFiles(Path.Combine(store, "tmp")));
            Assert.Single(await new FileStore(store).ListPackagesAsync(default));
            using var client = TestServer.PinnedClient(restarted.Url, ws.Ca);
            Assert.Contains(beforeHex, await client.GetStringAsync("/channels/stable.json"));

            var retried = await ws.Publish(restarted.Url, "during");
            Assert.True(retried.ExitCode == 0, retried.Stderr);
        }
    }

    [Fact]
    public async Task Export_writes_a_static_tree_with_the_same_paths_and_bytes_as_the_server()
    {
        string config = await ws.NewServerConfigAsync("export");
        await using var server = await ServerProcess.StartAsync(ws.Dir, config);
        await ws.PackageAsync("mirror", signers: 2, label: "mirror");
        Assert.Equal(0, (await ws.Publish(server.Url, "mirror")).ExitCode);

        var exported = await TabulaCli.RunAsync(["provisioning", "export", "mirror-tree", "--store", "export-store"], ws.Dir);
        Assert.True(exported.ExitCode == 0, exported.Stderr);
        using var client = TestServer.PinnedClient(server.Url, ws.Ca);
        string tree = Path.Combine(ws.Dir, "mirror-tree");
        byte[] descriptor = await client.GetByteArrayAsync("/channels/stable.json");
        Assert.Equal(descriptor, await File.ReadAllBytesAsync(Path.Combine(tree, "channels", "stable.json")));
        string archivePath = Tabula.Packaging.Descriptor.Parse(descriptor).OsPackageUrl.TrimStart('/');
        Assert.Equal(await client.GetByteArrayAsync("/" + archivePath), await File.ReadAllBytesAsync(Path.Combine(tree, archivePath)));
    }

    [Fact]
    public async Task Serve_with_an_invalid_config_exits_2_naming_the_problem()
    {
        string config = Path.Combine(ws.Dir, "bad.json");
        await File.WriteAllTextAsync(config, """{ "Listen": "https://example.org:443", "StoreDirectory": "x", "TrustPolicyDirectory": "trust" }""");
        var result = await TabulaCli.RunAsync(["provisioning", "serve", "--config", config], ws.Dir);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("Listen", result.Stderr);
    }
}

/// <summary>Yields the first half of the data, then blocks until released: an upload in flight.</summary>
sealed class HalfThenWaitStream(byte[] data, Task release) : Stream
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
        if (position >= data.Length / 2)
            await release.WaitAsync(ct);
        int n = Math.Min(count, data.Length - position);
        Array.Copy(data, position, buffer, offset, n);
        position += n;
        return n;
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

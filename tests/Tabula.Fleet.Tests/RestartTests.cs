using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using Tabula.Fleet.Api;
using Tabula.Fleet.Storage;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>
/// The real `tabula fleet serve` process, killed with SIGKILL while customers add devices and a relay
/// follows the stream, then started again: the relay resumes from its revision and ends with exactly
/// the controller's set, having seen every revision once (PeerFollower refuses gaps and duplicates).
/// </summary>
public sealed class RestartTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tabula-restart-").FullName;
    private string Database => "sqlite:" + Path.Combine(dir, "fleet.db");

    public void Dispose()
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
    }

    private static string Cli => Path.Combine(AppContext.BaseDirectory, "tabula.dll");

    private static ProcessStartInfo Tabula(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        info.ArgumentList.Add(Cli);
        foreach (string a in args) info.ArgumentList.Add(a);
        return info;
    }

    private Process Serve(int port)
    {
        var process = Process.Start(Tabula("fleet", "serve", "--db", Database, "--urls", $"http://127.0.0.1:{port}"))!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static async Task WaitReady(HttpClient client)
    {
        for (int i = 0; i < 300; i++)
        {
            try { if ((await client.GetAsync("/metrics")).IsSuccessStatusCode) return; }
            catch (HttpRequestException) { }
            await Task.Delay(100);
        }
        throw new TimeoutException("the controller did not start");
    }

    [Fact]
    public async Task Killed_controller_restarts_and_the_relay_resumes_with_no_lost_or_duplicated_delta()
    {
        // Bootstrap through the CLI: the first admin with an API token, straight into the database.
        using var create = Process.Start(Tabula("fleet", "staff", "create", "--db", Database, "--username", "root", "--role", "admin", "--api-token", "ci"))!;
        await create.StandardInput.WriteLineAsync("a long admin password");
        create.StandardInput.Close();
        string output = await create.StandardOutput.ReadToEndAsync();
        await create.WaitForExitAsync();
        Assert.True(create.ExitCode == 0, output + await create.StandardError.ReadToEndAsync());
        string adminToken = output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Trim();

        int port = FreePort();
        var server = Serve(port);
        try
        {
            var baseAddress = new Uri($"http://127.0.0.1:{port}");
            HttpClient Client(string? token = null, string scheme = "Bearer")
            {
                var c = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(10) };
                if (token is not null) c.DefaultRequestHeaders.Authorization = new(scheme, token);
                return c;
            }
            await WaitReady(Client());
            var admin = Client(adminToken);
            var enrollment = await (await admin.PostAsJsonAsync("/api/v1/enrollment-tokens", new NameRequest("relays"), FleetJson.Default.NameRequest))
                .Content.ReadFromJsonAsync(FleetJson.Default.TokenResponse);
            var relay = new TestRelay();
            await relay.EnrollAsync(Client(), enrollment!.Token, Http.NewDigest());
            (await admin.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", new ProvisionRequest("ch-zrh-wg-001", "ch", "Switzerland",
                "zrh", "Zurich", "own", true, "203.0.113.5", null, 51820, 100, true, null), FleetJson.Default.ProvisionRequest)).EnsureSuccessStatusCode();
            (await admin.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/deploy", new ReasonRequest(null), FleetJson.Default.ReasonRequest)).EnsureSuccessStatusCode();

            var follower = PeerFollower.Start(Client(), relay.RelayToken);
            var accounts = new List<HttpClient>();
            for (int i = 0; i < 8; i++)
                accounts.Add(Client((await (await admin.PostAsJsonAsync("/api/v1/customers", new CreateAccountRequest(null), FleetJson.Default.CreateAccountRequest))
                    .Content.ReadFromJsonAsync(FleetJson.Default.AccountView))!.Number, "Token"));

            async Task<int> AddMany(int from, int count)
            {
                int ok = 0;
                for (int i = from; i < from + count; i++)
                {
                    try
                    {
                        var r = await accounts[i % accounts.Count].PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(Http.NewWireGuardKey()), FleetJson.Default.AddDeviceRequest);
                        if (r.StatusCode == HttpStatusCode.Created) ok++;
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { }   // killed mid-request
                }
                return ok;
            }

            await AddMany(0, 10);
            // Kill while a writer is busy.
            var writer = AddMany(10, 15);
            await Task.Delay(150);
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
            await writer;
            long beforeRestart = follower.Applied;

            server = Serve(port);
            await WaitReady(Client());
            follower.Resume(Client(), relay.RelayToken);
            await AddMany(25, 10);

            using var secrets = Security.SecretsKey.Load(Security.SecretsKey.DefaultPath(Database));
            await using var store = SqlStore.Open(Database, secrets);
            var (head, hash, keys) = await store.ReadAsync(async tx =>
            {
                var state = await tx.PeerStateAsync(false);
                var list = new List<string>();
                await foreach (var p in tx.AllPeersAsync(CancellationToken.None)) list.Add(Convert.ToBase64String(p.PublicKey));
                return (state.Revision, Convert.ToHexStringLower(state.SetHash), list);
            }, CancellationToken.None);
            await follower.WaitForAsync(head, TimeSpan.FromSeconds(20));
            Assert.Equal(1, follower.Snapshots);   // resumed with deltas, no second snapshot
            Assert.True(beforeRestart > 0);
            // Every revision after the snapshot exactly once, in order (the snapshot may already hold the first adds when
            // the follower subscribes after them on a loaded machine).
            Assert.Equal(Enumerable.Range((int)follower.SnapshotRevision + 1, (int)(head - follower.SnapshotRevision)).Select(i => (long)i), follower.DeltaRevisions);
            Assert.Equal(hash, follower.Hash);
            Assert.Equal(keys.Order(), follower.Peers.Keys.Order());
            await follower.DisposeAsync();
        }
        finally
        {
            if (!server.HasExited) server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

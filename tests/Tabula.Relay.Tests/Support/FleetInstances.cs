using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using Tabula.Fleet.Api;
using Tabula.Fleet.Security;
using Tabula.Fleet.Storage;
using Tabula.Packaging;
using Tabula.Tls;

namespace Tabula.Relay.Tests.Support;

/// <summary>
/// Several real `tabula fleet serve` processes over one PostgreSQL database (the shared throwaway cluster, a fresh
/// database), each on its own HTTPS port with the dev CA of <see cref="RelayFiles"/>, sharing the ticket and secrets
/// key files as a PostgreSQL fleet must. An instance can be killed (SIGKILL: no goodbye to its streams) and started
/// again on its port.
/// </summary>
public sealed class FleetInstances : IAsyncDisposable
{
    readonly RelayFiles files;
    readonly string directory = Directory.CreateTempSubdirectory("tabula-instances-").FullName;
    readonly Process?[] processes;
    readonly int[] ports;

    public string Database { get; }
    public IReadOnlyList<Certificate> Ca { get; }
    public string AdminToken { get; private set; } = "";
    public string EnrollmentToken { get; private set; } = "";
    string SecretsKeyFile => Path.Combine(directory, "fleet-secrets.key");
    string TicketKeyFile => Path.Combine(directory, "ticket-key.pem");

    FleetInstances(RelayFiles files, string database, int count)
    {
        this.files = files;
        Database = database;
        Ca = Certificate.ParsePemBundle(File.ReadAllBytes(files.Tls.CaCertificate));
        processes = new Process?[count];
        ports = [.. Enumerable.Range(0, count).Select(_ => FreePort())];
    }

    /// <summary>The instances' base URLs, in index order (what a relay's list holds).</summary>
    public IReadOnlyList<Uri> Addresses => [.. ports.Select(p => new Uri($"https://127.0.0.1:{p}"))];

    /// <summary>Null when PostgreSQL is not installed (not under CI: <see cref="PostgresServer"/> throws there).</summary>
    public static async Task<FleetInstances?> StartAsync(RelayFiles files, int count)
    {
        if (await PostgresServer.SharedAsync() is not { } postgres) return null;
        var fleet = new FleetInstances(files, await postgres.CreateDatabaseAsync(), count);
        // The first admin, offline into the database (which it migrates), with an API token: its last line.
        var created = await TabulaCli.RunAsync(["fleet", "staff", "create", "--db", fleet.Database, "--secrets-key", fleet.SecretsKeyFile,
            "--username", "root", "--role", "admin", "--api-token", "ci"], environment: new Dictionary<string, string> { ["TABULA_FLEET_PASSWORD"] = "a long admin password" });
        Assert.True(created.ExitCode == 0, created.Stdout + created.Stderr);
        fleet.AdminToken = created.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Trim();
        // One after the other: the first start makes the ticket key the others then read.
        for (int i = 0; i < count; i++)
            await fleet.StartAsync(i);
        using var admin = fleet.Client(0, fleet.AdminToken);
        var token = await (await admin.PostAsJsonAsync("/api/v1/enrollment-tokens", new NameRequest("relays"), FleetJson.Default.NameRequest))
            .Content.ReadFromJsonAsync(FleetJson.Default.TokenResponse);
        fleet.EnrollmentToken = token!.Token;
        return fleet;
    }

    /// <summary>Starts instance <paramref name="index"/> on its port and waits until it answers.</summary>
    public async Task StartAsync(int index)
    {
        var start = TabulaCli.StartInfo(["fleet", "serve", "--db", Database, "--urls", Addresses[index].ToString().TrimEnd('/'),
            "--tls-cert", files.Tls.ServerCertificate, "--tls-key", files.Tls.ServerKey, "--ticket-key", TicketKeyFile,
            "--secrets-key", SecretsKeyFile, "--relay-private-addresses", "--rate-limit-scale", "1000"]);
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        processes[index] = process;
        using var client = Client(index);
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if ((await client.GetAsync("/metrics")).IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            if (process.HasExited) throw new InvalidOperationException($"fleet serve {index} exited with {process.ExitCode}");
            if (clock.Elapsed > TimeSpan.FromSeconds(60)) throw new TimeoutException($"fleet serve {index} did not answer");
            await Task.Delay(100);
        }
    }

    /// <summary>SIGKILL: the process ends at once, its connections are reset by the kernel.</summary>
    public async Task KillAsync(int index)
    {
        if (processes[index] is not { } process) return;
        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();
        process.Dispose();
        processes[index] = null;
    }

    /// <summary>A client of one instance that trusts only the dev CA.</summary>
    public HttpClient Client(int index, string? token = null, string scheme = "Bearer") =>
        PinnedHttp.Client(Addresses[index], new PinnedTlsRoots(Ca, TimeProvider.System), TimeSpan.FromSeconds(30),
            token is null ? null : new AuthenticationHeaderValue(scheme, token));

    /// <summary>The database's head revision, set hash and keys (what every relay must end with).</summary>
    public async Task<(long Revision, byte[] Hash, List<string> Keys)> PeerSetAsync()
    {
        using var secrets = SecretsKey.Load(SecretsKeyFile);
        await using var store = SqlStore.Open(Database, secrets);
        return await store.ReadAsync(async tx =>
        {
            var state = await tx.PeerStateAsync(false);
            var keys = new List<string>();
            await foreach (var p in tx.AllPeersAsync(CancellationToken.None)) keys.Add(Convert.ToBase64String(p.PublicKey));
            return (state.Revision, state.SetHash, keys);
        }, CancellationToken.None);
    }

    public async ValueTask DisposeAsync()
    {
        for (int i = 0; i < processes.Length; i++)
            await KillAsync(i);
        try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
    }

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

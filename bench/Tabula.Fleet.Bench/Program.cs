using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Data.Sqlite;
using Tabula.Fleet.Api;
using Tabula.Fleet.Core;
using Tabula.Fleet.Protocol;
using Tabula.Fleet.Security;
using Tabula.Fleet.Storage;
using Tabula.Testing;

// Peer stream benchmark (bench/fleet-peer-stream.sh):
//  1. seed a SQLite fleet database with DEVICES customer keys and RELAYS deployed machines (straight SQL: an
//     API call per key would take longer than the measurement);
//  2. start `tabula fleet serve` as its own process (so its RSS is its own), on http:// and h2c://;
//  3. time a full snapshot to a fresh relay;
//  4. subscribe RELAYS relays over HTTP/2 from the head revision, then add ADDS devices one after another
//     through the customer API and time each from the request to the moment every relay has the delta.
// --instances N (issue 18): PostgreSQL instead (a throwaway cluster, Tabula.Testing's PostgresServer, or --postgres
// CONNECTION), N `fleet serve` processes over it; relay i subscribes to instance i % N, devices are added through
// instance 0, so every other instance learns of each add through LISTEN/NOTIFY. --instances 1 --postgres-cluster is the
// one-instance baseline on the same database engine.
// The controller heartbeats every 15 s; a relay that hears nothing for longer gives up, as the agent does.
var streamIdle = TimeSpan.FromSeconds(60);
int devices = Arg("--devices", 1_000_000), relays = Arg("--relays", 1000), adds = Arg("--adds", 200), instances = Arg("--instances", 1);
bool postgres = instances > 1 || args.Contains("--postgres-cluster") || args.Contains("--postgres");
string dir = Directory.CreateTempSubdirectory("tabula-bench-").FullName;
string db = Path.Combine(dir, "fleet.db");
string database = "sqlite:" + db;
if (postgres && StringArg("--postgres") is { } given)
    database = "postgres:" + given;
else if (postgres && OperatingSystem.IsLinux())
    database = await ((await PostgresServer.SharedAsync()) ?? throw new InvalidOperationException("no PostgreSQL (Debian's postgresql package)")).CreateDatabaseAsync();
else if (postgres)
    throw new PlatformNotSupportedException("the throwaway PostgreSQL cluster runs on Linux; give --postgres CONNECTION");
Console.WriteLine($"devices={devices} relays={relays} adds={adds} instances={instances} db={(postgres ? "postgres" : db)}");
var total = Stopwatch.StartNew();

string secretsFile = postgres ? Path.Combine(dir, "fleet-secrets.key") : Tabula.Fleet.Security.SecretsKey.DefaultPath(db);
using var secrets = Tabula.Fleet.Security.SecretsKey.LoadOrCreate(secretsFile);
await using (var store = SqlStore.Open(database, secrets)) await store.MigrateAsync(CancellationToken.None);
string accountNumber = "9" + RandomNumberGenerator.GetInt32(100_000_000).ToString("D15", CultureInfo.InvariantCulture);
string[] tokens;
if (postgres)
{
    await using var connection = new Npgsql.NpgsqlConnection(database["postgres:".Length..]);
    await connection.OpenAsync();
    tokens = FleetSeed.Seed(connection, secrets, devices, relays, accountNumber);
}
else tokens = FleetSeed.Seed(db, secrets, devices, relays, accountNumber);
Console.WriteLine($"seeded in {total.Elapsed.TotalSeconds:F1} s");

var servers = new List<(Process Process, int Http, int H2c)>();
for (int n = 0; n < instances; n++)
{
    int httpPort = FreePort(), h2cPort = FreePort();
    var serverInfo = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (string a in new[] { Path.Combine(AppContext.BaseDirectory, "tabula.dll"), "fleet", "serve", "--db", database,
                 "--urls", $"http://127.0.0.1:{httpPort};h2c://127.0.0.1:{h2cPort}",
                 // The peer stream is measured, not the abuse limits: one account adds every device, every relay is 127.0.0.1.
                 "--rate-limits", "off", "--device-adds-per-window", "100000000", "--max-connections-per-client", "100000" })
        serverInfo.ArgumentList.Add(a);
    if (postgres)
        foreach (string a in new[] { "--secrets-key", secretsFile, "--ticket-key", Path.Combine(dir, "ticket-key.pem") })
            serverInfo.ArgumentList.Add(a);
    serverInfo.Environment["DOTNET_gcServer"] = "0";
    var started = Process.Start(serverInfo)!;
    started.OutputDataReceived += (_, _) => { };
    int tag = n;
    started.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine($"server {tag}: " + e.Data); };
    started.BeginOutputReadLine();
    started.BeginErrorReadLine();
    servers.Add((started, httpPort, h2cPort));
    // One after the other: the first start makes the ticket key the others read.
    var probe = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}") };
    for (int i = 0; ; i++)
    {
        try { if ((await probe.GetAsync("/metrics")).IsSuccessStatusCode) break; } catch (HttpRequestException) { }
        if (i > 600 || started.HasExited) throw new TimeoutException($"controller {n} did not start");
        await Task.Delay(100);
    }
}
var server = servers[0].Process;
try
{
    Console.WriteLine($"{instances} controller(s) up, RSS {string.Join(" / ", servers.Select(s => Rss(s.Process.Id)))}");

    HttpClient H2(int port) => new(new SocketsHttpHandler { EnableMultipleHttp2Connections = true, PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan })
    {
        BaseAddress = new Uri($"http://127.0.0.1:{port}"), DefaultRequestVersion = HttpVersion.Version20,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact, Timeout = Timeout.InfiniteTimeSpan,
    };
    var h2s = servers.Select(s => H2(s.H2c)).ToList();
    var h2 = h2s[0];

    // Full snapshot to a fresh relay.
    double cpuBefore = CpuSeconds(server.Id);
    var snapshot = Stopwatch.StartNew();
    long head, peers = 0, bytes = 0;
    using (var request = new HttpRequestMessage(HttpMethod.Get, "/relay/v1/peers?from=0"))
    {
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", tokens[0]);
        request.Version = HttpVersion.Version20;
        request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
        using var response = await h2.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"snapshot: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        var reader = new PeerLineReader(await response.Content.ReadAsStreamAsync(), streamIdle);
        while (true)
        {
            var text = await reader.ReadLineAsync(CancellationToken.None) ?? throw new EndOfStreamException();
            bytes += text.Length + 1;
            var line = PeerLine.Parse(text.Span);
            if (line.Type == PeerLineType.Peer) { peers++; continue; }
            if (line.Type == PeerLineType.SnapshotEnd) { head = line.Revision; break; }
        }
    }
    snapshot.Stop();
    Console.WriteLine($"snapshot: {peers} peers, {bytes / 1e6:F0} MB in {snapshot.Elapsed.TotalSeconds:F2} s (revision {head}); controller CPU {CpuSeconds(server.Id) - cpuBefore:F2} s; RSS {Rss(server.Id)}");

    // RELAYS subscribers from the head revision (steady state: each relay already has the set).
    var applied = new int[adds + 1];
    var done = new TaskCompletionSource[adds + 1];
    for (int i = 0; i <= adds; i++) done[i] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    long baseRevision = head;
    var cts = new CancellationTokenSource();
    var ready = new CountdownEvent(relays);
    Exception? firstFailure = null;
    var streams = Enumerable.Range(0, relays).Select(i => Task.Run(async () =>
    {
      try
      {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/relay/v1/peers?from={baseRevision}");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", tokens[i]);
        request.Version = HttpVersion.Version20;
        request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
        using var response = await h2s[i % instances].SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        response.EnsureSuccessStatusCode();
        var reader = new PeerLineReader(await response.Content.ReadAsStreamAsync(cts.Token), streamIdle);
        bool signalled = false;
        long expected = baseRevision + 1;
        while (await reader.ReadAsync(cts.Token) is { } line)
        {
            if (!signalled && line.Type == PeerLineType.Heartbeat) { ready.Signal(); signalled = true; continue; }
            if (line.Type != PeerLineType.Add) continue;
            long r = line.Revision;
            if (r != expected) throw new InvalidDataException($"relay {i}: revision {r}, expected {expected}");
            expected++;
            int n = (int)(r - baseRevision);
            if (n <= adds && Interlocked.Increment(ref applied[n]) == relays) done[n].TrySetResult();
        }
      }
      catch (Exception e) when (!cts.IsCancellationRequested)
      {
          Interlocked.CompareExchange(ref firstFailure, e, null);
          throw;
      }
    })).ToList();
    var subscribing = Stopwatch.StartNew();
    if (!ready.Wait(TimeSpan.FromSeconds(300)))
        throw new TimeoutException($"only {relays - ready.CurrentCount} relays subscribed; first failure: {firstFailure}");
    Console.WriteLine($"{relays} relays subscribed over HTTP/2 to {instances} instance(s) in {subscribing.Elapsed.TotalSeconds:F1} s; controller RSS {string.Join(" / ", servers.Select(s => Rss(s.Process.Id)))}");

    var customer = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{servers[0].Http}") };
    customer.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Token", accountNumber);
    var latencies = new List<double>();
    for (int n = 1; n <= adds; n++)
    {
        var t = Stopwatch.StartNew();
        var response = await customer.PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(Convert.ToBase64String(RandomNumberGenerator.GetBytes(32))),
            FleetJson.Default.AddDeviceRequest);
        response.EnsureSuccessStatusCode();
        var device = await response.Content.ReadFromJsonAsync(FleetJson.Default.DeviceView);
        if (device!.Revision != baseRevision + n) throw new InvalidDataException("unexpected revision " + device.Revision);
        await done[n].Task.WaitAsync(TimeSpan.FromSeconds(30));
        latencies.Add(t.Elapsed.TotalMilliseconds);
    }
    latencies.Sort();
    double P(double q) => latencies[Math.Min(latencies.Count - 1, (int)Math.Ceiling(q * latencies.Count) - 1)];
    Console.WriteLine($"device add -> all {relays} relays applied: p50 {P(0.50):F1} ms, p90 {P(0.90):F1} ms, p99 {P(0.99):F1} ms, max {latencies[^1]:F1} ms (n={latencies.Count})");
    Console.WriteLine($"controller RSS {string.Join(" / ", servers.Select(s => Rss(s.Process.Id)))}, peak {string.Join(" / ", servers.Select(s => Peak(s.Process.Id)))}");
    cts.Cancel();
    try { await Task.WhenAll(streams); } catch (Exception e) when (e is OperationCanceledException or HttpRequestException or IOException) { }
}
finally
{
    foreach (var (process, _, _) in servers)
    {
        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();
    }
    SqliteConnection.ClearAllPools();
    Directory.Delete(dir, recursive: true);
}
Console.WriteLine($"total {total.Elapsed.TotalSeconds:F0} s");
return 0;


static double CpuSeconds(int pid)
{
    string[] fields = File.ReadAllText($"/proc/{pid}/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
    return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
}

static string Rss(int pid) => Status(pid, "VmRSS:");
static string Peak(int pid) => Status(pid, "VmHWM:");
static string Status(int pid, string field) =>
    File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith(field, StringComparison.Ordinal))?[field.Length..].Trim() ?? "?";

static int FreePort()
{
    using var listener = new TcpListener(IPAddress.Loopback, 0);
    listener.Start();
    return ((IPEndPoint)listener.LocalEndpoint).Port;
}

string? StringArg(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[i + 1] : null;
}

int Arg(string name, int fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}


using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Tabula.Fleet.Storage;

// Rate limiter cost on the customer API (bench/fleet-rate-limits.sh):
//  1. seed two SQLite fleet databases alike with ACCOUNTS customer accounts (straight through the store);
//  2. start two `tabula fleet serve` processes side by side: one with `--rate-limits off`, one with the limiter on and every
//     budget multiplied by SCALE (default 1000), so the limiter does all its work (per-source partition, per-credential
//     hash, token buckets) and refuses nothing: what is measured is its cost, not its refusals;
//  3. in alternating rounds (off, on, off, on, …) of SECONDS each, WORKERS concurrent HTTP/1.1 clients, each from its own
//     loopback source address (127.0.1.x) with its own account, GET /app/v1/devices as fast as they can;
//  4. print requests per second per round, the medians, the ratio on/off, and every non-200 answer (there must be none).
// The load generator shares the machine with the server, equally in both conditions. The servers are TABULA (the script
// passes ./tabula: the NativeAOT build, as deployed, no JIT warm-up drift), else `dotnet tabula.dll` from this build.
int accounts = Arg("--accounts", 2000), workers = Arg("--workers", 32), seconds = Arg("--seconds", 10), rounds = Arg("--rounds", 5),
    scale = Arg("--scale", 1000), warmup = Arg("--warmup", 10);
string? tabula = Array.IndexOf(args, "--tabula") is var t and >= 0 && t + 1 < args.Length ? args[t + 1] : null;
string dir = Directory.CreateTempSubdirectory("tabula-ratebench-").FullName;
Console.WriteLine($"accounts={accounts} workers={workers} seconds={seconds} rounds={rounds} warmup={warmup} scale={scale} cpus={Environment.ProcessorCount} " +
                  $"server={tabula ?? "dotnet tabula.dll"}");

var numbers = new List<string>();
foreach (string name in new[] { "off", "on" })
{
    // Each database's secrets key, made next to it here, is what its server loads by default.
    using var secrets = Tabula.Fleet.Security.SecretsKey.LoadOrCreate(Tabula.Fleet.Security.SecretsKey.DefaultPath(Path.Combine(dir, name + ".db")));
    await using var store = SqlStore.Open("sqlite:" + Path.Combine(dir, name + ".db"), secrets);
    await store.MigrateAsync(CancellationToken.None);
    await store.WriteAsync(async tx =>
    {
        for (int i = 0; i < accounts; i++)
        {
            string number = "9" + (i + 1).ToString("D15", CultureInfo.InvariantCulture);
            await tx.InsertAccountAsync(number, 5);
            if (name == "off") numbers.Add(number);
        }
        return 0;
    }, CancellationToken.None);
}

var servers = new Dictionary<string, (Process Process, Uri Address)>();
try
{
    foreach (var (name, extra) in new[] { ("off", new[] { "--rate-limits", "off" }), ("on", new[] { "--rate-limits", "on", "--rate-limit-scale", scale.ToString(CultureInfo.InvariantCulture) }) })
    {
        int port = FreePort();
        var info = new ProcessStartInfo(tabula ?? "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        if (tabula is null) info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "tabula.dll"));
        foreach (string a in new[] { "fleet", "serve", "--db", "sqlite:" + Path.Combine(dir, name + ".db"),
                     "--urls", $"http://127.0.0.1:{port}", "--max-connections-per-client", "1000" }.Concat(extra))
            info.ArgumentList.Add(a);
        info.Environment["DOTNET_gcServer"] = "0";
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine($"server {name}: {e.Data}"); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        servers[name] = (process, new Uri($"http://127.0.0.1:{port}"));
    }
    foreach (var (name, (_, address)) in servers)
    {
        using var probe = new HttpClient { BaseAddress = address };
        for (int i = 0; ; i++)
        {
            try { if ((await probe.GetAsync("/metrics")).IsSuccessStatusCode) break; } catch (HttpRequestException) { }
            if (i > 300) throw new TimeoutException($"controller {name} did not start");
            await Task.Delay(100);
        }
    }

    // Warm both (JIT, connection pools, SQLite page cache), then alternate.
    foreach (var name in servers.Keys) await RoundAsync(servers[name].Address, TimeSpan.FromSeconds(warmup));
    var results = new Dictionary<string, List<double>> { ["off"] = [], ["on"] = [] };
    var pairs = new List<double>();
    var refusals = new Dictionary<string, long> { ["off"] = 0, ["on"] = 0 };
    for (int round = 1; round <= rounds; round++)
        foreach (string name in new[] { "off", "on" })
        {
            var (ok, other) = await RoundAsync(servers[name].Address, TimeSpan.FromSeconds(seconds));
            double rate = ok / (double)seconds;
            results[name].Add(rate);
            refusals[name] += other;
            Console.WriteLine($"round {round} limiter {name,-3}: {rate,9:F0} requests/s ({ok} ok, {other} other)" +
                              (name == "on" ? $"   on/off this round {rate / results["off"][^1]:F3}" : ""));
            if (name == "on") pairs.Add(rate / results["off"][^1]);
        }
    double off = Median(results["off"]), on = Median(results["on"]);
    Console.WriteLine($"median: limiter off {off:F0} requests/s, limiter on {on:F0} requests/s, on/off = {on / off:F3}; " +
                      $"median of per-round on/off {Median(pairs):F3}; non-200 answers: off {refusals["off"]}, on {refusals["on"]}");
    return refusals["on"] + refusals["off"] == 0 ? 0 : 1;
}
finally
{
    foreach (var (process, _) in servers.Values)
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();
    }
    try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
}

async Task<(long Ok, long Other)> RoundAsync(Uri address, TimeSpan length)
{
    long ok = 0, other = 0;
    using var stop = new CancellationTokenSource(length);
    var tasks = Enumerable.Range(0, workers).Select(w => Task.Run(async () =>
    {
        var source = IPAddress.Parse($"127.0.1.{1 + w % 250}");
        using var client = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                socket.Bind(new IPEndPoint(source, 0));
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, context.DnsEndPoint.Port), ct);
                return new NetworkStream(socket, ownsSocket: true);
            },
        }) { BaseAddress = address };
        for (int i = 0; !stop.IsCancellationRequested; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/app/v1/devices");
            request.Headers.Authorization = new AuthenticationHeaderValue("Token", numbers[(w + i * workers) % numbers.Count]);
            try
            {
                using var response = await client.SendAsync(request, stop.Token);
                await response.Content.LoadIntoBufferAsync(stop.Token);
                if (response.StatusCode == HttpStatusCode.OK) Interlocked.Increment(ref ok);
                else Interlocked.Increment(ref other);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
        }
    })).ToList();
    await Task.WhenAll(tasks);
    return (ok, other);
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
}

static int FreePort()
{
    using var listener = new TcpListener(IPAddress.Loopback, 0);
    listener.Start();
    return ((IPEndPoint)listener.LocalEndpoint).Port;
}

int Arg(string name, int fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

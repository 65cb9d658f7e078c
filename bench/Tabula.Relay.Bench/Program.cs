using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Tabula.Fleet.Storage;
using Tabula.Machine.Reporting;
using Tabula.Packaging;
using Tabula.Tls;
using Tabula.Relay;
using Tabula.Relay.Fleet;
using Tabula.Relay.Serving;
using Tabula.Relay.Sync;

// The relay agent's peer sync at scale (bench/relay-sync.sh):
//  1. seed a SQLite fleet database with DEVICES customer keys and one deployed relay (FleetSeed);
//  2. start `tabula fleet serve` as its own process over HTTPS (a dev CA the agent pins, as on a relay);
//  3. run the agent's PeerSync in this process, exactly as tabula-relay does, against a UAPI device: wireguard-go,
//     or a sink that parses and acknowledges (to isolate the agent's own cost);
//  4. print the time from subscribing to the snapshot applied (or the first failure) and this process's peak RSS.
// Usage: Tabula.Relay.Bench --devices N --interface NAME [--socket-dir DIR]
string Arg(string name, string fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}
int devices = int.Parse(Arg("--devices", "100000"), CultureInfo.InvariantCulture);
string iface = Arg("--interface", "twrelay0"), socketDir = Arg("--socket-dir", "/var/run/wireguard");
string dir = Directory.CreateTempSubdirectory("tabula-relay-bench-").FullName;
try
{
    string db = Path.Combine(dir, "fleet.db");
    using var secrets = Tabula.Fleet.Security.SecretsKey.LoadOrCreate(Tabula.Fleet.Security.SecretsKey.DefaultPath(db));
    await using (var store = SqlStore.Open("sqlite:" + db, secrets)) await store.MigrateAsync(CancellationToken.None);
    string token = FleetSeed.Seed(db, secrets, devices, 1, "9" + RandomNumberGenerator.GetInt32(100_000_000).ToString("D15", CultureInfo.InvariantCulture))[0];
    var tls = DevCertificateAuthority.Init(Path.Combine(dir, "tls"), ["127.0.0.1"], DateTimeOffset.UtcNow, TimeSpan.FromDays(1), TimeSpan.FromDays(1));

    int port;
    using (var probe = new TcpListener(IPAddress.Loopback, 0)) { probe.Start(); port = ((IPEndPoint)probe.LocalEndpoint).Port; }
    var serverInfo = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (string a in new[] { Path.Combine(AppContext.BaseDirectory, "tabula.dll"), "fleet", "serve", "--db", "sqlite:" + db,
                 "--urls", $"https://127.0.0.1:{port}", "--tls-cert", tls.ServerCertificate, "--tls-key", tls.ServerKey })
        serverInfo.ArgumentList.Add(a);
    using var server = Process.Start(serverInfo)!;
    server.OutputDataReceived += (_, _) => { };
    server.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine("server: " + e.Data); };
    server.BeginOutputReadLine();
    server.BeginErrorReadLine();
    try
    {
        for (int i = 0; ; i++)
        {
            using var probe = new TcpClient();
            try { await probe.ConnectAsync(IPAddress.Loopback, port); break; } catch (SocketException) { }
            if (i > 600) throw new TimeoutException("controller did not start");
            await Task.Delay(100);
        }

        var console = new StringWriter();
        var log = new RelayLog(TextWriter.Synchronized(console), TimeProvider.System);
        using var fleet = new FleetClient(new Uri($"https://127.0.0.1:{port}"), Certificate.ParsePemBundle(File.ReadAllBytes(tls.CaCertificate)),
            TimeProvider.System) { RelayToken = token };
        var device = new UapiRelayDevice(iface, _ => { }, socketDir);
        var sync = new PeerSync(device.Control, fleet, log, TimeProvider.System);
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(20));
        var clock = Stopwatch.StartNew();
        var running = sync.RunAsync(stop.Token);
        string result = "timeout";
        while (!stop.IsCancellationRequested)
        {
            if (sync.AppliedRevision == devices) { result = "ok"; break; }
            string? resubscribe = console.ToString().Split('\n').FirstOrDefault(ConsoleMarker.Relay("sync", "resubscribe").Matches);
            if (resubscribe is not null) { result = ConsoleLine.TryParse(resubscribe)?.Field("reason") ?? resubscribe; break; }
            await Task.Delay(5);
        }
        clock.Stop();
        await stop.CancelAsync();
        try { await running; } catch (OperationCanceledException) { }
        Console.WriteLine($"devices={devices} result=\"{result}\" seconds={clock.Elapsed.TotalSeconds:F2} peers_applied={(result == "ok" ? devices : sync.PeerCount)} " +
            $"agent_peak_rss_kib={Status("VmHWM:")} controller_peak_rss_kib={Status("VmHWM:", server.Id)}");
    }
    finally
    {
        server.Kill(entireProcessTree: true);
        await server.WaitForExitAsync();
    }
}
finally
{
    Directory.Delete(dir, recursive: true);
}

static string Status(string field, int? pid = null) =>
    File.ReadLines($"/proc/{(pid is null ? "self" : pid.Value.ToString(CultureInfo.InvariantCulture))}/status")
        .Where(l => l.StartsWith(field, StringComparison.Ordinal)).Select(l => l[field.Length..].Trim().Split(' ')[0]).FirstOrDefault("?");

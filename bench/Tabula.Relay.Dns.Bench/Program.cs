using System.Net;
using System.Runtime.InteropServices;
using Tabula.Relay.Dns;

// Serves DNS with the relay's forwarder on the default gateway addresses (10.64.0.1, fc00:bbbb:bbbb:bb01::1) for the
// default pools, forwarding to --upstream, until SIGTERM/SIGINT or --seconds pass; then prints the counters (totals,
// never names) and the process's peak RSS. Run inside a network namespace that has the gateway addresses.
// Usage: Tabula.Relay.Dns.Bench --upstream IP:PORT [--upstream IP:PORT …] [--seconds N]
var upstreams = new List<IPEndPoint>();
int seconds = 600;
for (int i = 0; i + 1 < args.Length; i += 2)
{
    if (args[i] == "--upstream")
        upstreams.Add(IPEndPoint.Parse(args[i + 1]));
    else if (args[i] == "--seconds")
        seconds = int.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture);
}
using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });

await using (var forwarder = DnsForwarder.Start(new DnsOptions
{
    ListenAddresses = DnsOptions.DefaultListenAddresses,
    ClientNetworks = DnsOptions.DefaultClientNetworks,
    Upstreams = upstreams,
}, stop.Token))
{
    Console.WriteLine("ready");
    try { await Task.Delay(Timeout.Infinite, stop.Token); }
    catch (OperationCanceledException) { }
    Console.WriteLine(forwarder.Counters);
}
string hwm = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal)) ?? "VmHWM: ?";
Console.WriteLine(hwm);

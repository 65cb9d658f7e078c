using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Tabula.Linux.Netlink;
using Tabula.WireGuard;
using Tabula.WireGuard.Kernel;
using Tabula.WireGuard.Keys;
using Tabula.WireGuard.Uapi;

// Usage (bench/wireguard-peers.sh drives it):
//   apply  --interface NAME --peers N [--socket-dir DIR]   full peer set (replace_peers) through UAPI; one result line
//   get    --interface NAME [--socket-dir DIR]             read the device back through UAPI; one result line
//   encode-kernel --peers N                                build every WG_CMD_SET_DEVICE message, send none
//   write-conf --peers N --private-key B64                 the same peer set as a wg(8) config file on stdout
//   sink   --interface NAME --socket-dir DIR               a minimal UAPI daemon: counts peers, answers errno=0
//   kernel-check                                           in a guest with kernel WireGuard: functional checks (KernelGuest.cs)
//   kernel-apply --peers N                                 in such a guest: full peer set through netlink; one result line
// Peers are generated lazily and deterministically: public key i = 32 SplitMix64 bytes from seed i (any 32 bytes are
// a valid X25519 u-coordinate), allowed IP 10.x.y.z/32 from i (IPv4 space covers 2^24 peers).
var options = ParseOptions(args.Skip(1));
string mode = args.Length > 0 ? args[0] : "help";
return mode switch
{
    "apply" => await Apply(options),
    "get" => await Get(options),
    "encode-kernel" => EncodeKernel(options),
    "write-conf" => WriteConf(options),
    "sink" => await Sink(options),
    "kernel-check" => KernelGuest.Check(),
    "kernel-apply" => KernelGuest.Apply(int.Parse(options["peers"], CultureInfo.InvariantCulture),
        GeneratePeers(int.Parse(options["peers"], CultureInfo.InvariantCulture))),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: bench apply|get|encode-kernel|write-conf|sink [--interface NAME] [--peers N] [--socket-dir DIR]");
    return 2;
}

static Dictionary<string, string> ParseOptions(IEnumerable<string> args)
{
    var result = new Dictionary<string, string>();
    string? key = null;
    foreach (string arg in args)
    {
        if (arg.StartsWith("--", StringComparison.Ordinal))
            key = arg[2..];
        else if (key is not null)
        {
            result[key] = arg;
            key = null;
        }
    }
    return result;
}

static IEnumerable<PeerUpdate> GeneratePeers(int count)
{
    var bytes = new byte[32];
    for (int i = 0; i < count; i++)
    {
        ulong state = (ulong)i * 0x9E3779B97F4A7C15UL;
        for (int word = 0; word < 4; word++)
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(word * 8), SplitMix64(ref state));
        yield return new PeerUpdate
        {
            PublicKey = new WireGuardKey(bytes),
            AllowedIps = [new AllowedIp(new IPAddress(new byte[] { 10, (byte)(i >> 16), (byte)(i >> 8), (byte)i }), 32)],
        };
    }
}

// SplitMix64 (Steele, Lea, Flood 2014): cheap, deterministic, good enough to make distinct keys.
static ulong SplitMix64(ref ulong state)
{
    ulong z = state += 0x9E3779B97F4A7C15UL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    return z ^ (z >> 31);
}

static long PeakRssKiB() => StatusKiB("VmHWM:");

static long StatusKiB(string field)
{
    foreach (string line in File.ReadLines("/proc/self/status"))
        if (line.StartsWith(field, StringComparison.Ordinal))
            return long.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    return -1;
}

static void Report(string mode, int peers, Stopwatch clock, string result, string extra = "")
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"mode={mode} peers={peers} seconds={clock.Elapsed.TotalSeconds:F3} peak_rss_kib={PeakRssKiB()} " +
        $"allocated_mib={GC.GetTotalAllocatedBytes() / 1048576.0:F1} gen2={GC.CollectionCount(2)} result={result}{extra}"));
}

static async Task<int> Apply(Dictionary<string, string> options)
{
    int peers = int.Parse(options["peers"], CultureInfo.InvariantCulture);
    var control = new UapiWireGuardControl(options["interface"], options.GetValueOrDefault("socket-dir", UapiWireGuardControl.DefaultSocketDirectory));
    int sent = 0;
    IEnumerable<PeerUpdate> Counted() { foreach (var p in GeneratePeers(peers)) { sent++; yield return p; } }
    var clock = Stopwatch.StartNew();
    try
    {
        await control.ApplyAsync(new DeviceUpdate { ReplacePeers = true, Peers = Counted() });
        Report("apply", peers, clock, "ok");
        return 0;
    }
    catch (WireGuardDeviceException e)
    {
        Report("apply", peers, clock, e.ErrorName, $" peers_enumerated={sent}");
        return 1;
    }
}

static async Task<int> Get(Dictionary<string, string> options)
{
    var control = new UapiWireGuardControl(options["interface"], options.GetValueOrDefault("socket-dir", UapiWireGuardControl.DefaultSocketDirectory));
    var clock = Stopwatch.StartNew();
    using var state = await control.GetAsync();
    Report("get", state.Peers.Count, clock, "ok");
    return 0;
}

static int EncodeKernel(Dictionary<string, string> options)
{
    int peers = int.Parse(options["peers"], CultureInfo.InvariantCulture);
    var writer = new NetlinkMessageBuilder(Limits.NetlinkSetMessageBytes);
    var clock = Stopwatch.StartNew();
    using var encoder = new KernelSetEncoder("wg0", new DeviceUpdate { ReplacePeers = true, Peers = GeneratePeers(peers) });
    long bytes = 0;
    uint seq = 0;
    while (encoder.TryWriteNext(writer, 0x20))
        bytes += writer.Finish(++seq).Length;
    Report("encode-kernel", peers, clock, "ok", $" messages={encoder.MessageCount} bytes={bytes}");
    return 0;
}

static int WriteConf(Dictionary<string, string> options)
{
    int peers = int.Parse(options["peers"], CultureInfo.InvariantCulture);
    using var output = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false), 1 << 16);
    output.Write($"[Interface]\nPrivateKey = {options["private-key"]}\n");
    foreach (var peer in GeneratePeers(peers))
        output.Write($"\n[Peer]\nPublicKey = {peer.PublicKey.ToBase64()}\nAllowedIPs = {peer.AllowedIps[0]}\n");
    return 0;
}

static async Task<int> Sink(Dictionary<string, string> options)
{
    string path = Path.Combine(options["socket-dir"], options["interface"] + ".sock");
    File.Delete(path);
    using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    listener.Bind(new UnixDomainSocketEndPoint(path));
    listener.Listen(4);
    Console.Error.WriteLine($"sink listening on {path}");
    while (true)
    {
        using var client = await listener.AcceptAsync();
        await using var stream = new NetworkStream(client);
        using var reader = new StreamReader(stream, Encoding.ASCII, false, 1 << 16);
        long peers = 0, ips = 0;
        string? first = await reader.ReadLineAsync();
        string? line;
        while (!string.IsNullOrEmpty(line = await reader.ReadLineAsync()))
        {
            if (line.StartsWith("public_key=", StringComparison.Ordinal)) peers++;
            else if (line.StartsWith("allowed_ip=", StringComparison.Ordinal)) ips++;
        }
        await stream.WriteAsync(Encoding.ASCII.GetBytes(first == "get=1" ? "errno=0\n\n" : "errno=0\n\n"));
        Console.Error.WriteLine($"sink: {first} peers={peers} allowed_ips={ips}");
    }
}

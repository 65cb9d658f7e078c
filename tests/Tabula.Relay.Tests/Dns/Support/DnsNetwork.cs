using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Tabula.Relay.Dns;

namespace Tabula.Relay.Tests.Dns.Support;

/// <summary>
/// Three throwaway network namespaces: "relay" with the gateway addresses on the client link (as on wg0) and a
/// "public" uplink, "client" with a pool address (and a non-pool one on the same link), "upstream" where dnsmasq
/// answers. Deleted on dispose, with every process started here.
/// <code>
///  client  cr ───────────── rc  relay  ru ───────────── ur  upstream
///  10.64.0.2/10                 10.64.0.1/10 (gateway)       198.51.100.1/24   198.51.100.53/24 (dnsmasq)
///  fc00:bbbb:bbbb:bb01::2/64    fc00:bbbb:bbbb:bb01::1/64    2001:db8:2::1/64  2001:db8:2::53/64
///  192.0.2.2/24, 2001:db8:1::2  192.0.2.1/24, 2001:db8:1::1  (the relay's "public" addresses)
/// </code>
/// </summary>
public sealed class DnsNetwork : IDisposable
{
    public const string Gateway4 = "10.64.0.1", Gateway6 = "fc00:bbbb:bbbb:bb01::1";
    public const string Client4 = "10.64.0.2", Client6 = "fc00:bbbb:bbbb:bb01::2";
    public const string Stranger4 = "192.0.2.2", Stranger6 = "2001:db8:1::2";
    public const string RelayLink4 = "192.0.2.1", RelayLink6 = "2001:db8:1::1";
    public const string RelayPublic4 = "198.51.100.1", RelayPublic6 = "2001:db8:2::1";
    public const string Upstream4 = "198.51.100.53", Upstream6 = "2001:db8:2::53";

    readonly List<IDisposable> owned = [];

    public NetworkNamespace Relay { get; }
    public NetworkNamespace Client { get; }
    public NetworkNamespace Upstream { get; }

    public DnsNetwork()
    {
        Relay = Own(NetworkNamespace.Create("dnsr"));
        Client = Own(NetworkNamespace.Create("dnsc"));
        Upstream = Own(NetworkNamespace.Create("dnsu"));
        try
        {
            Relay.Ip("link", "add", "rc", "type", "veth", "peer", "name", "cr", "netns", Client.Name);
            Relay.Ip("link", "add", "ru", "type", "veth", "peer", "name", "ur", "netns", Upstream.Name);
            Address(Relay, "rc", $"{Gateway4}/10", $"{Gateway6}/64", $"{RelayLink4}/24", $"{RelayLink6}/64");
            Address(Client, "cr", $"{Client4}/10", $"{Client6}/64", $"{Stranger4}/24", $"{Stranger6}/64");
            Address(Relay, "ru", $"{RelayPublic4}/24", $"{RelayPublic6}/64");
            Address(Upstream, "ur", $"{Upstream4}/24", $"{Upstream6}/64");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    T Own<T>(T item) where T : IDisposable
    {
        owned.Add(item);
        return item;
    }

    static void Address(NetworkNamespace ns, string link, params string[] addresses)
    {
        foreach (string address in addresses)
            if (address.Contains(':'))
                ns.Ip("-6", "addr", "add", address, "dev", link, "nodad");
            else
                ns.Ip("addr", "add", address, "dev", link);
        ns.Ip("link", "set", link, "up");
    }

    /// <summary>Adds an address to the upstream namespace (for a second upstream server).</summary>
    public void AddUpstreamAddress(string address) =>
        Upstream.Ip(address.Contains(':') ? ["-6", "addr", "add", address + "/64", "dev", "ur", "nodad"] : ["addr", "add", address + "/24", "dev", "ur"]);

    public static DnsOptions Options(params IPEndPoint[] upstreams) => new()
    {
        ListenAddresses = DnsOptions.DefaultListenAddresses,
        ClientNetworks = DnsOptions.DefaultClientNetworks,
        Upstreams = upstreams,
        UpstreamTimeout = TimeSpan.FromSeconds(1),
    };

    /// <summary>The forwarder with every socket made inside the relay namespace.</summary>
    public DnsForwarder StartForwarder(DnsOptions options) =>
        DnsForwarder.Start(options, (family, type, protocol) => Relay.RunInside(() => new Socket(family, type, protocol)),
            TimeProvider.System, CancellationToken.None);

    /// <summary>dnsmasq as an authoritative-only server (no upstream of its own, no hosts file, no query log, TTL 300).</summary>
    public Dnsmasq StartDnsmasq(IReadOnlyList<string> listen, params string[] records) => Own(new Dnsmasq(Upstream, listen, records));

    public void Dispose()
    {
        for (int i = owned.Count - 1; i >= 0; i--)
            owned[i].Dispose();
        owned.Clear();
    }
}

/// <summary>A command's outcome; <see cref="Run"/> never throws on a non-zero exit, and is bounded in time.</summary>
public sealed record CommandResult(int ExitCode, string Output, string Error)
{
    public static CommandResult Run(string file, IEnumerable<string> arguments, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(Prerequisites.FindOnPath(file) ?? file)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            return new CommandResult(-1, stdout.Result, stderr.Result + "\n(timed out)");
        }
        return new CommandResult(process.ExitCode, stdout.Result, stderr.Result);
    }
}

/// <summary>dnsmasq in a namespace, started in the foreground and killed (by its own pid) on dispose.</summary>
public sealed class Dnsmasq : IDisposable
{
    readonly Process process;
    readonly string pidFile = Path.Combine(Path.GetTempPath(), $"tabula-dnsmasq-{Guid.NewGuid():N}.pid");

    public Dnsmasq(NetworkNamespace ns, IReadOnlyList<string> listen, string[] records)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in (string[])["netns", "exec", ns.Name, Prerequisites.FindOnPath("dnsmasq") ?? "dnsmasq",
                     "--keep-in-foreground", "--log-facility=-", "--no-resolv", "--no-hosts", "--bind-interfaces",
                     "--port=53", "--user=root", "--local-ttl=300", $"--pid-file={pidFile}", $"--listen-address={string.Join(',', listen)}", .. records])
            start.ArgumentList.Add(a);
        process = Process.Start(start)!;
        // Ready once it says "started" (dnsmasq logs its start, never a query without --log-queries).
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            var line = process.StandardError.ReadLineAsync();
            if (!line.Wait(TimeSpan.FromSeconds(10) - deadline.Elapsed) || line.Result is null)
                break;
            if (line.Result.Contains("started", StringComparison.Ordinal))
            {
                _ = process.StandardError.ReadToEndAsync();
                return;
            }
        }
        Dispose();
        throw new InvalidOperationException("dnsmasq did not start");
    }

    public bool HasExited { get; private set; }

    public void Dispose()
    {
        if (HasExited)
            return;
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }
        HasExited = process.HasExited;
        process.Dispose();
        File.Delete(pidFile);
    }
}

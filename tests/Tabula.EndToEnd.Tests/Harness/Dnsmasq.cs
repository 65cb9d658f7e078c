using System.Diagnostics;

namespace Tabula.EndToEnd.Tests.Harness;

/// <summary>dnsmasq as the DHCP server of a tap network (and, when given names, its DNS server), run inside the
/// namespace; its log is kept.</summary>
public sealed class Dnsmasq : IDisposable
{
    readonly Process process;
    readonly List<string> log = [];
    readonly string leases;

    Dnsmasq(Process process, string leases)
    {
        this.process = process;
        this.leases = leases;
    }

    public string Log
    {
        get { lock (log) return string.Join('\n', log); }
    }

    /// <summary>
    /// Serves 10.199.N.50-60/24 with the host side as router and resolver. <paramref name="reservations"/> give a MAC a
    /// fixed address; <paramref name="names"/> turns DNS on (on the tap only) and answers exactly these names with
    /// their addresses (nothing is forwarded: the namespace has no way out).
    /// </summary>
    public static Dnsmasq Start(TapNetwork network, IReadOnlyDictionary<string, string>? reservations = null,
        IReadOnlyDictionary<string, System.Net.IPAddress>? names = null)
    {
        string prefix = network.HostAddress.ToString()[..network.HostAddress.ToString().LastIndexOf('.')];
        string leases = Path.GetTempFileName();
        var start = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "netns", "exec", network.Namespace.Name, "dnsmasq", "--no-daemon", names is null ? "--port=0" : "--port=53",
                     $"--interface={network.Tap}", "--bind-interfaces", $"--dhcp-range={prefix}.50,{prefix}.60,255.255.255.0,1h",
                     $"--dhcp-option=3,{network.HostAddress}", $"--dhcp-option=6,{network.HostAddress}", $"--dhcp-leasefile={leases}",
                     "--no-resolv", "--no-hosts", "--log-dhcp" })
            start.ArgumentList.Add(a);
        foreach (var (mac, address) in reservations ?? new Dictionary<string, string>())
            start.ArgumentList.Add($"--dhcp-host={mac},{address}");
        foreach (var (name, address) in names ?? new Dictionary<string, System.Net.IPAddress>())
            start.ArgumentList.Add($"--host-record={name},{address}");
        if (names is not null)
            start.ArgumentList.Add("--log-queries");
        var dnsmasq = new Dnsmasq(Process.Start(start)!, leases);
        dnsmasq.process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (dnsmasq.log) dnsmasq.log.Add(e.Data); };
        dnsmasq.process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (dnsmasq.log) dnsmasq.log.Add(e.Data); };
        dnsmasq.process.BeginErrorReadLine();
        dnsmasq.process.BeginOutputReadLine();
        return dnsmasq;
    }

    public void Dispose()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }
        process.Dispose();
        File.Delete(leases);
    }
}

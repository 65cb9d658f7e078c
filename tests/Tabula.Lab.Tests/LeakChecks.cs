using System.Diagnostics;
using Tabula.Lab;

namespace Tabula.Lab.Tests;

/// <summary>
/// Leak checks run inside the one lab of <see cref="LabTests"/> (no second lab): what a customer can and cannot reach
/// through a relay, what the relay answers from outside, and what the lab's consoles and logs hold. Every command is
/// bounded in time; nothing loops without a count.
/// </summary>
internal static class LeakChecks
{
    static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(20);

    public static void Run(LabSummary summary, RelaySummary relay, string dir, Action<string> say)
    {
        var internet = summary.Internet!;
        string client = summary.ClientNamespace!;
        string iface = relay.WireguardInterface;

        // Positive control through the tunnel: the echo host answers and sees the relay (curl binds to the interface).
        var seen = Run("ip", "netns", "exec", client, "curl", "-s", "--max-time", "8", "--interface", iface, $"http://{internet.Echo.Ipv4}/ip");
        Assert.True(seen.Code == 0 && seen.Stdout == relay.PublicIpv4, $"through {iface}: curl exit {seen.Code}, saw \"{seen.Stdout}\"");

        // A 5 MB download through the tunnel arrives intact at the client MTU Mullvad's apps use (1380) and at
        // WireGuard's default (1420): MSS clamping, no fragment lost. Byte i of /bytes/N is i mod 251.
        foreach (int mtu in new[] { 1380, 1420 })
        {
            Run("ip", "-n", client, "link", "set", iface, "mtu", mtu.ToString(System.Globalization.CultureInfo.InvariantCulture));
            string file = Path.Combine(dir, $"bytes-{mtu}.bin");
            try
            {
                var download = Run("ip", "netns", "exec", client, "curl", "-s", "--max-time", "120", "--interface", iface, "-o", file,
                    $"http://{internet.Echo.Ipv4}/bytes/5000000");
                Assert.True(download.Code == 0, $"5 MB through {iface} at MTU {mtu}: curl exit {download.Code}");
                byte[] bytes = File.ReadAllBytes(file);
                Assert.Equal(5_000_000, bytes.Length);
                for (int i = 0; i < bytes.Length; i++)
                    if (bytes[i] != (byte)(i % 251))
                        Assert.Fail($"5 MB through {iface} at MTU {mtu}: byte {i} is {bytes[i]}, not {i % 251}");
                say($"leak: 5 MB through {iface} at MTU {mtu}: intact");
            }
            finally
            {
                File.Delete(file);
            }
        }
        Run("ip", "-n", client, "link", "set", iface, "mtu", "1420");

        // Every management service a relay can reach stays out of the customer's reach through the tunnel.
        foreach (string endpoint in internet.PrivateEndpoints)
        {
            var probe = Run("ip", "netns", "exec", client, "curl", "-sk", "--max-time", "4", "--interface", iface, $"https://{endpoint}/");
            Assert.True(probe.Code != 0, $"{endpoint} answered through the tunnel (curl exit 0)");
            say($"leak: {endpoint} through {iface}: unreachable (curl exit {probe.Code})");
        }

        // The in-tunnel resolver is silent on the relay's public addresses (asked from the other customer's machine).
        foreach (string address in new[] { relay.PublicIpv4!, relay.PublicIpv6! })
        {
            string other = internet.CustomerNamespaces[1];
            foreach (string transport in new[] { "+notcp", "+tcp" })
            {
                var dig = Run("ip", "netns", "exec", other, "dig", "+time=2", "+tries=1", transport, "+short", $"@{address}", internet.Echo.Name, "A");
                Assert.True(dig.Code != 0 && !dig.Stdout.Contains(internet.Echo.Ipv4, StringComparison.Ordinal),
                    $"the relay answered DNS on its public address {address} ({transport}): exit {dig.Code}, \"{dig.Stdout}\"");
            }
            say($"leak: DNS on the relay's public {address}: no answer (UDP and TCP)");
        }

        // The in-tunnel resolver answers A and AAAA on both gateway addresses, asked from the customer's tunnel
        // address. dig cannot bind to an interface, so a host route sends each gateway into the tunnel. Then a unique
        // name, asked once on each gateway, must be in no console or log: the resolver keeps no query log.
        string tunnel4 = TunnelAddress(client, iface, "-4"), tunnel6 = TunnelAddress(client, iface, "-6");
        string uniqueName = $"leak-{Guid.NewGuid():N}.{internet.Echo.Name}";
        foreach (var (gateway, source, prefix) in new[] { ("10.64.0.1", tunnel4, "/32"), ("fc00:bbbb:bbbb:bb01::1", tunnel6, "/128") })
        {
            Run("ip", "-n", client, "route", "replace", gateway + prefix, "dev", iface);
            foreach (var (type, expected) in new[] { ("A", internet.Echo.Ipv4), ("AAAA", internet.Echo.Ipv6) })
            {
                var dig = Run("ip", "netns", "exec", client, "dig", "+time=3", "+tries=2", "+short", "-b", source, $"@{gateway}", internet.Echo.Name, type);
                Assert.True(dig.Code == 0 && System.Net.IPAddress.TryParse(dig.Stdout, out var answer) && answer.Equals(System.Net.IPAddress.Parse(expected)),
                    $"DNS {type} {internet.Echo.Name} via {gateway} from the tunnel: exit {dig.Code}, \"{dig.Stdout}\"");
            }
            var unique = Run("ip", "netns", "exec", client, "dig", "+time=3", "+tries=2", "-b", source, $"@{gateway}", uniqueName, "A");
            Assert.True(unique.Code == 0 && unique.Stdout.Contains("NXDOMAIN", StringComparison.Ordinal),
                $"a unique name via {gateway}: exit {unique.Code}, expected NXDOMAIN from the echo host's authoritative server");
            say($"leak: DNS A and AAAA via {gateway} from the tunnel answered; a unique name NXDOMAIN");
        }

        // No customer key (private or public), tunnel address or queried name in any console or log of the lab.
        string privateKey = File.ReadAllText(Path.Combine(dir, "wireguard", "client.key")).Trim();
        string publicKey = Run(["wg", "pubkey"], privateKey + "\n").Stdout;
        Assert.False(string.IsNullOrEmpty(publicKey));
        var files = new List<string> { relay.ConsoleLog };
        if (Directory.Exists(Path.Combine(dir, "logs")))
            files.AddRange(Directory.EnumerateFiles(Path.Combine(dir, "logs")));
        foreach (string file in files.Where(File.Exists))
        {
            string text = File.ReadAllText(file);
            Assert.DoesNotContain(privateKey, text);
            Assert.DoesNotContain(publicKey, text);
            Assert.DoesNotContain(uniqueName, text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(tunnel4, text);
            Assert.DoesNotContain(tunnel6, text, StringComparison.OrdinalIgnoreCase);
        }
        say($"leak: the customer's key, tunnel addresses and queried name in none of {files.Count} consoles and logs");
    }

    /// <summary>The customer's tunnel address of one family on its WireGuard interface (the lab's client sets one each).</summary>
    static string TunnelAddress(string ns, string iface, string family)
    {
        var shown = Run("ip", "-n", ns, "-o", family, "addr", "show", "dev", iface, "scope", "global");
        string[] fields = shown.Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        int at = Array.IndexOf(fields, family == "-4" ? "inet" : "inet6");
        Assert.True(shown.Code == 0 && at >= 0 && at + 1 < fields.Length, $"no {family} tunnel address on {iface}: \"{shown.Stdout}\"");
        return fields[at + 1].Split('/')[0];
    }

    static (int Code, string Stdout) Run(params string[] command) => Run(command, null);

    static (int Code, string Stdout) Run(string[] command, string? stdin)
    {
        var start = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null, UseShellExecute = false,
        };
        foreach (string argument in command.Skip(1))
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        if (stdin is not null)
        {
            process.StandardInput.Write(stdin);
            process.StandardInput.Close();
        }
        var stdout = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(CommandTimeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            return (-1, "");
        }
        return (process.ExitCode, stdout.Result.Trim());
    }
}

using System.Diagnostics;
using Tabula.Lab;
using Tabula.Tls;

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

    /// <summary>
    /// A second customer (own account, own device, own wireguard-go in the other customer namespace) on the same relay:
    /// nothing either customer sends to the other's tunnel addresses (ICMP, UDP, TCP, both families) arrives — the
    /// receiving tunnel interface's RX packet counter stays where it was, while a ping to the gateway moves it (the
    /// counter works). Then the second device is deleted through the customer API: its tunnel stops answering within
    /// seconds while the first customer's keeps working.
    /// </summary>
    public static void RunTwoCustomers(LabSummary summary, RelaySummary relay, Action<string> say)
    {
        var internet = summary.Internet!;
        string client1 = summary.ClientNamespace!, iface1 = relay.WireguardInterface;
        string client2 = internet.CustomerNamespaces[1], iface2 = "tlsecond0";
        string relayKey = Run("ip", "netns", "exec", client1, "wg", "show", iface1, "peers").Stdout.Split('\n')[0].Trim();
        Assert.False(string.IsNullOrEmpty(relayKey), $"no relay peer on {iface1}");

        // The second account is made by staff (anonymous creation needs a voucher by default).
        using var staff = PinnedHttp.Client(new Uri(summary.FleetUrl!), PinnedTlsRoots.LoadPemFile(summary.FleetCa, TimeProvider.System), CommandTimeout,
            new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", File.ReadAllText(summary.StaffTokenFile).Trim()));
        string account = Json(staff.PostAsync("/api/v1/customers", new StringContent("{}", System.Text.Encoding.UTF8, "application/json"))
            .GetAwaiter().GetResult()).GetProperty("number").GetString()!;
        using var customer = PinnedHttp.Client(new Uri(summary.FleetUrl!), PinnedTlsRoots.LoadPemFile(summary.FleetCa, TimeProvider.System), CommandTimeout,
            new System.Net.Http.Headers.AuthenticationHeaderValue("Token", account));
        string privateKey = Run("wg", "genkey").Stdout;
        string publicKey = Run(["wg", "pubkey"], privateKey + "\n").Stdout;
        var device = Json(customer.PostAsync("/app/v1/devices", new StringContent($"{{\"public_key\":\"{publicKey}\"}}",
            System.Text.Encoding.UTF8, "application/json")).GetAwaiter().GetResult());
        long deviceId = device.GetProperty("id").GetInt64();
        string device4 = device.GetProperty("ipv4_address").GetString()!, device6 = device.GetProperty("ipv6_address").GetString()!;
        string keyFile = Path.Combine(Path.GetTempPath(), $"tabula-lab-second-{Environment.ProcessId}.key");
        File.WriteAllText(keyFile, privateKey + "\n");
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        // A socket left by an earlier, killed run would pass the wait below before this wireguard-go serves.
        File.Delete($"/var/run/wireguard/{iface2}.sock");
        var wireguardGoOutput = new System.Text.StringBuilder();
        var wireguardGo = new Process
        {
            StartInfo = new ProcessStartInfo("ip", ["netns", "exec", client2, "wireguard-go", "-f", iface2])
                { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false },
        };
        // Both pipes are drained, so a chatty wireguard-go never blocks on a full pipe.
        wireguardGo.OutputDataReceived += (_, e) => { lock (wireguardGoOutput) wireguardGoOutput.AppendLine(e.Data); };
        wireguardGo.ErrorDataReceived += (_, e) => { lock (wireguardGoOutput) wireguardGoOutput.AppendLine(e.Data); };
        wireguardGo.Start();
        wireguardGo.BeginOutputReadLine();
        wireguardGo.BeginErrorReadLine();
        try
        {
            Until(() => File.Exists($"/var/run/wireguard/{iface2}.sock"), TimeSpan.FromSeconds(20), $"wireguard-go {iface2}");
            string endpoint = Run("ip", "netns", "exec", client1, "wg", "show", iface1, "endpoints").Stdout.Split('\t').Last().Trim();
            // The socket file appears when wireguard-go binds it; a set sent in the moment before it serves can fail (seen once
            // in CI), so the set is retried, bounded, and the last failure shows wg's own error and wireguard-go's state.
            string[] set = ["ip", "netns", "exec", client2, "wg", "set", iface2, "private-key", keyFile, "peer", relayKey, "endpoint", endpoint,
                "allowed-ips", "0.0.0.0/0,::/0"];
            var lastSet = Run(set);
            for (int attempt = 0; attempt < 10 && lastSet.Code != 0 && !wireguardGo.HasExited; attempt++)
            {
                Thread.Sleep(500);
                lastSet = Run(set);
            }
            Assert.True(lastSet.Code == 0, $"{string.Join(' ', set)}: exit {lastSet.Code}: {lastSet.Stderr}" +
                (wireguardGo.HasExited ? $" (wireguard-go exited {wireguardGo.ExitCode}: {wireguardGoOutput})" : ""));
            Must("ip", "-n", client2, "addr", "add", device4 + "/32", "dev", iface2);
            Must("ip", "-n", client2, "-6", "addr", "add", device6 + "/128", "dev", iface2, "nodad");
            Must("ip", "-n", client2, "link", "set", iface2, "up");
            Must("ip", "-n", client2, "route", "replace", "10.64.0.1/32", "dev", iface2);
            Must("ip", "-n", client2, "route", "replace", "fc00:bbbb:bbbb:bb01::1/128", "dev", iface2);
            // The relay learns the device from the peer stream within a second or two; the first pings may find it absent.
            Until(() => Run("ip", "netns", "exec", client2, "ping", "-c", "1", "-W", "2", "10.64.0.1").Code == 0, TimeSpan.FromSeconds(60),
                "the second customer's first ping through the relay");
            say("leak: a second customer (own account and device) pings 10.64.0.1 through the same relay");

            string first4 = TunnelAddress(client1, iface1, "-4"), first6 = TunnelAddress(client1, iface1, "-6");
            NeverDelivered(client1, iface1, client2, iface2, device4, device6, say);
            NeverDelivered(client2, iface2, client1, iface1, first4, first6, say);

            using (var deleted = customer.DeleteAsync($"/app/v1/devices/{deviceId}").GetAwaiter().GetResult())
                Assert.True(deleted.IsSuccessStatusCode, $"DELETE the second device: HTTP {(int)deleted.StatusCode}");
            var cut = Stopwatch.StartNew();
            Until(() => Run("ip", "netns", "exec", client2, "ping", "-c", "1", "-W", "1", "10.64.0.1").Code != 0, TimeSpan.FromSeconds(30),
                "the removed device's traffic to stop");
            // Three more pings in a row must fail (no stale session), and the first customer keeps working.
            for (int i = 0; i < 3; i++)
                Assert.True(Run("ip", "netns", "exec", client2, "ping", "-c", "1", "-W", "1", "10.64.0.1").Code != 0, "the removed device still reaches the relay");
            Assert.True(Run("ip", "netns", "exec", client1, "ping", "-c", "1", "-W", "3", "-I", iface1, "10.64.0.1").Code == 0,
                "the first customer lost the relay when the second device was removed");
            say($"leak: the second device deleted: its tunnel cut within {cut.Elapsed.TotalSeconds:0.0}s, the first customer still served");
        }
        finally
        {
            try { wireguardGo.Kill(entireProcessTree: true); wireguardGo.WaitForExit(5000); } catch (InvalidOperationException) { }
            wireguardGo.Dispose();
            File.Delete(keyFile);
        }
    }

    /// <summary>ICMP, UDP and TCP from one customer to another's tunnel addresses, both families: the receiver's
    /// tunnel interface counts no packet; a ping to the gateway from the receiver then moves the counter.</summary>
    static void NeverDelivered(string fromNs, string fromIface, string toNs, string toIface, string to4, string to6, Action<string> say)
    {
        Must("ip", "-n", fromNs, "route", "replace", to4 + "/32", "dev", fromIface);
        Must("ip", "-n", fromNs, "route", "replace", to6 + "/128", "dev", fromIface);
        long before = RxPackets(toNs, toIface);
        foreach (string target in new[] { to4, to6 })
        {
            Run("ip", "netns", "exec", fromNs, "ping", "-c", "2", "-W", "1", target);
            Run("ip", "netns", "exec", fromNs, "bash", "-c", $"echo leak > /dev/udp/{target}/9999; echo leak > /dev/udp/{target}/53");
            Run("ip", "netns", "exec", fromNs, "timeout", "3", "bash", "-c", $"exec 3<>/dev/tcp/{target}/9999");
        }
        Thread.Sleep(1000);
        long after = RxPackets(toNs, toIface);
        Assert.True(after == before, $"{after - before} packets from {fromIface} arrived on the other customer's {toIface}");
        Assert.True(Run("ip", "netns", "exec", toNs, "ping", "-c", "1", "-W", "3", "-I", toIface, "10.64.0.1").Code == 0, $"{toIface} no longer reaches the gateway");
        Assert.True(RxPackets(toNs, toIface) > after, $"{toIface}'s RX counter did not move for the gateway's reply: the check above proves nothing");
        Run("ip", "-n", fromNs, "route", "del", to4 + "/32", "dev", fromIface);
        Run("ip", "-n", fromNs, "route", "del", to6 + "/128", "dev", fromIface);
        say($"leak: ICMP, UDP and TCP from {fromIface} to the other customer (IPv4 and IPv6): none arrived on {toIface}");
    }

    static long RxPackets(string ns, string iface)
    {
        string text = File.Exists($"/var/run/netns/{ns}")
            ? Run("ip", "netns", "exec", ns, "cat", $"/sys/class/net/{iface}/statistics/rx_packets").Stdout : "";
        Assert.True(long.TryParse(text, out long packets), $"no rx_packets for {iface} in {ns}: \"{text}\"");
        return packets;
    }

    static System.Text.Json.JsonElement Json(HttpResponseMessage response)
    {
        using (response)
        {
            string text = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
            Assert.True(response.IsSuccessStatusCode, $"HTTP {(int)response.StatusCode} from {response.RequestMessage?.RequestUri?.AbsolutePath}");
            return System.Text.Json.JsonDocument.Parse(text).RootElement.Clone();
        }
    }

    static void Must(params string[] command)
    {
        var result = Run(command);
        Assert.True(result.Code == 0, $"{string.Join(' ', command)}: exit {result.Code}: {result.Stderr}");
    }

    static void Until(Func<bool> condition, TimeSpan limit, string what)
    {
        var clock = Stopwatch.StartNew();
        for (int attempt = 0; attempt < 120; attempt++)
        {
            if (condition()) return;
            if (clock.Elapsed > limit) break;
            Thread.Sleep(500);
        }
        Assert.Fail($"waited {clock.Elapsed.TotalSeconds:0}s for {what}");
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

    static (int Code, string Stdout, string Stderr) Run(params string[] command) => Run(command, null);

    static (int Code, string Stdout, string Stderr) Run(string[] command, string? stdin)
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
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(CommandTimeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            return (-1, "", "timed out");
        }
        return (process.ExitCode, stdout.Result.Trim(), stderr.Result.Trim());
    }
}

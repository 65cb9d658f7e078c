using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.Win32.SafeHandles;
using Tabula.Linux;
using Tabula.Linux.Netlink.Route;
using Tabula.WireGuard;
using Tabula.WireGuard.Kernel;
using Tabula.WireGuard.Keys;

/// <summary>
/// Runs inside a QEMU guest whose kernel has WireGuard (tests/Tabula.WireGuard.Tests/KernelGuestTests.cs boots it):
/// the kernel generic-netlink client against the real module, cross-checked with wg(8), and a ping between two kernel
/// endpoints in two namespaces. Prints "KERNEL-CHECK <name> ok|FAIL <detail>" per check and "KERNEL-CHECK done".
/// </summary>
internal static class KernelGuest
{
    static int failures;

    public static int Check()
    {
        Run("family-resolves", () =>
        {
            var e = Record.Exception(() => new KernelWireGuardControl("nosuch0").Get());
            Require(e is WireGuardUnavailableException { Reason: UnavailableReason.NoSuchInterface }, $"got {e?.GetType().Name}");
        });
        Run("device-round-trip", DeviceRoundTrip);
        Run("tunnel-ping", TunnelPing);
        Console.WriteLine($"KERNEL-CHECK done failures={failures}");
        return failures == 0 ? 0 : 1;
    }

    /// <summary>A full peer set through netlink into a fresh kernel device; one result line like the UAPI runs.</summary>
    public static int Apply(int peers, IEnumerable<PeerUpdate> generated)
    {
        string name = "wgbench0";
        if (Link(name) is null)
            CreateLink(name);
        using var key = WireGuardKey.GeneratePrivateKey();
        var control = new KernelWireGuardControl(name);
        var clock = Stopwatch.StartNew();
        control.Apply(new DeviceUpdate { PrivateKey = key, ListenPort = 51820, ReplacePeers = true, Peers = generated });
        double seconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        using var state = control.Get();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"mode=kernel-apply peers={peers} seconds={seconds:F3} messages={control.LastMessageCount} get_seconds={clock.Elapsed.TotalSeconds:F3} read_back={state.Peers.Count} peak_rss_kib={PeakRssKiB()}"));
        // No delete: tearing down 100k peers takes minutes under emulation, and the guest powers off next anyway.
        return state.Peers.Count == peers ? 0 : 1;
    }

    static void DeviceRoundTrip()
    {
        using var privateKey = WireGuardKey.GeneratePrivateKey();
        using var publicKey = privateKey.DerivePublicKey();
        using var psk = WireGuardKey.GeneratePresharedKey();
        var peers = Enumerable.Range(0, 2000).Select(_ => WireGuardKey.GeneratePrivateKey().DerivePublicKey()).ToArray();
        CreateLink("wgk0");
        var control = new KernelWireGuardControl("wgk0");
        control.Apply(new DeviceUpdate
        {
            PrivateKey = privateKey, ListenPort = 51820, FirewallMark = 7, ReplacePeers = true,
            Peers = peers.Select((k, i) => new PeerUpdate
            {
                PublicKey = k,
                PresharedKey = i == 0 ? psk : null,
                Endpoint = i == 0 ? IPEndPoint.Parse("192.0.2.1:9") : i == 1 ? IPEndPoint.Parse("[2001:db8::1]:443") : null,
                PersistentKeepaliveInterval = i == 0 ? (ushort)25 : null,
                // Peer 0 has enough allowed IPs to be split across messages (continuation fragments).
                AllowedIps = i == 0
                    ? Enumerable.Range(0, 2000).Select(j => new AllowedIp(new IPAddress(new byte[] { 10, 50, (byte)(j >> 8), (byte)j }), 32)).ToArray()
                    : [new AllowedIp(new IPAddress(new byte[] { 10, 60, (byte)(i >> 8), (byte)i }), 32), AllowedIp.Parse($"fd60::{i:x}/128")],
            }),
        });
        Require(control.LastMessageCount > 2, $"messages={control.LastMessageCount}");
        using var state = control.Get();
        Require(privateKey.Equals(state.PrivateKey) && publicKey.Equals(state.PublicKey), "device keys");
        Require(state.ListenPort == 51820 && state.FirewallMark == 7, "port/fwmark");
        Require(state.Peers.Count == 2000, $"peers={state.Peers.Count}");
        var first = state.Peers.Single(p => p.PublicKey.Equals(peers[0]));
        Require(first.AllowedIps.Count == 2000 && psk.Equals(first.PresharedKey) && first.PersistentKeepaliveInterval == 25, "peer 0");
        Require(Equals(first.Endpoint, IPEndPoint.Parse("192.0.2.1:9")), "peer 0 endpoint");
        Require(Equals(state.Peers.Single(p => p.PublicKey.Equals(peers[1])).Endpoint, IPEndPoint.Parse("[2001:db8::1]:443")), "peer 1 endpoint");

        // wg(8) reads the same device independently.
        string[] dump = Sh("wg", "show", "wgk0", "dump").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Require(dump[0].Split('\t')[0] == privateKey.ToBase64() && dump[0].Split('\t')[2] == "51820", "wg dump device line");
        Require(dump.Length == 2001, $"wg dump lines={dump.Length}");
        var row = dump.Skip(1).Select(l => l.Split('\t')).Single(f => f[0] == peers[0].ToBase64());
        Require(row[1] == psk.ToBase64() && row[2] == "192.0.2.1:9" && row[3].Split(',').Length == 2000 && row[7] == "25", "wg dump peer 0");

        // Deltas: remove one peer, update-only on an unknown peer creates nothing, replace allowed IPs.
        using var ghost = WireGuardKey.GeneratePrivateKey().DerivePublicKey();
        control.Apply(new DeviceUpdate
        {
            Peers =
            [
                PeerUpdate.RemovePeer(peers[5]),
                new PeerUpdate { PublicKey = ghost, UpdateOnly = true, AllowedIps = [AllowedIp.Parse("10.70.0.1/32")] },
                new PeerUpdate { PublicKey = peers[0], ReplaceAllowedIps = true, AllowedIps = [AllowedIp.Parse("10.80.0.0/16")] },
            ],
        });
        using var after = control.Get();
        Require(after.Peers.Count == 1999 && !after.Peers.Any(p => p.PublicKey.Equals(ghost)), $"after deltas peers={after.Peers.Count}");
        Require(after.Peers.Single(p => p.PublicKey.Equals(peers[0])).AllowedIps.SequenceEqual([AllowedIp.Parse("10.80.0.0/16")]), "replaced allowed IPs");

        var busy = Record.Exception(() => CreateLink("wgk0"));
        Require(busy is LinuxException { Errno: Errno.EEXIST }, $"create twice: {busy?.GetType().Name}");
        using (var rtnl = RouteSocket.Open())
            rtnl.DeleteLink(Link("wgk0")!.Index);
        Require(Link("wgk0") is null, "deleted");
        foreach (var k in peers) k.Dispose();
    }

    static void TunnelPing()
    {
        Sh("ip", "netns", "add", "ka");
        Sh("ip", "netns", "add", "kb");
        Sh("ip", "link", "add", "vka", "netns", "ka", "type", "veth", "peer", "name", "vkb", "netns", "kb");
        Sh("ip", "-n", "ka", "addr", "add", "10.201.0.1/24", "dev", "vka");
        Sh("ip", "-n", "kb", "addr", "add", "10.201.0.2/24", "dev", "vkb");
        foreach (var (ns, veth) in new[] { ("ka", "vka"), ("kb", "vkb") })
        {
            Sh("ip", "-n", ns, "link", "set", "lo", "up");
            Sh("ip", "-n", ns, "link", "set", veth, "up");
        }
        using var keyA = WireGuardKey.GeneratePrivateKey();
        using var keyB = WireGuardKey.GeneratePrivateKey();
        using var pubA = keyA.DerivePublicKey();
        using var pubB = keyB.DerivePublicKey();
        var sides = new[] { ("ka", "wga", keyA, pubB, "10.201.0.2", "10.202.0.1", "10.202.0.2"), ("kb", "wgb", keyB, pubA, "10.201.0.1", "10.202.0.2", "10.202.0.1") };
        foreach (var (ns, wg, key, peer, peerUnderlay, self, peerOverlay) in sides)
        {
            InNamespace(ns, () =>
            {
                CreateLink(wg);
                new KernelWireGuardControl(wg).Apply(new DeviceUpdate
                {
                    PrivateKey = key, ListenPort = 51820,
                    Peers = [new PeerUpdate { PublicKey = peer, Endpoint = IPEndPoint.Parse(peerUnderlay + ":51820"), AllowedIps = [AllowedIp.Parse(peerOverlay + "/32")] }],
                });
                using var rtnl = RouteSocket.Open();
                rtnl.SetLinkUp(rtnl.GetLink(wg)!.Index);
            });
            Sh("ip", "-n", ns, "addr", "add", self + "/24", "dev", wg);
        }
        string ping = Sh("ip", "netns", "exec", "ka", "ping", "-c", "3", "-i", "0.2", "-W", "10", "10.202.0.2");
        Require(ping.Contains("3 received", StringComparison.Ordinal), "ping: " + ping.Replace('\n', ' '));
        foreach (var (ns, wg, _, peer, _, _, _) in sides)
        {
            var state = InNamespace(ns, () => new KernelWireGuardControl(wg).Get());
            var p = state.Peers.Single();
            Require(p.PublicKey.Equals(peer) && p.LastHandshake is not null && p.ReceiveBytes > 0 && p.TransmitBytes > 0,
                $"{wg}: handshake {p.LastHandshake} rx {p.ReceiveBytes} tx {p.TransmitBytes}");
            state.Dispose();
        }
        Sh("ip", "netns", "del", "ka");
        Sh("ip", "netns", "del", "kb");
    }

    // The link through Tabula.Linux's rtnetlink, as the relay creates it.
    static void CreateLink(string name)
    {
        using var rtnl = RouteSocket.Open();
        rtnl.CreateLink(name, LinkKind.WireGuard);
    }

    static Link? Link(string name)
    {
        using var rtnl = RouteSocket.Open();
        return rtnl.GetLink(name);
    }

    static long PeakRssKiB() =>
        File.ReadLines("/proc/self/status").Where(l => l.StartsWith("VmHWM:", StringComparison.Ordinal))
            .Select(l => long.Parse(l["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture)).FirstOrDefault(-1);

    static T InNamespace<T>(string ns, Func<T> action) => Namespaces.RunInside($"/run/netns/{ns}", NamespaceKind.Network, action);

    static void InNamespace(string ns, Action action) => InNamespace(ns, () => { action(); return 0; });

    static void Run(string name, Action check)
    {
        try
        {
            check();
            Console.WriteLine($"KERNEL-CHECK {name} ok");
        }
        catch (Exception e)
        {
            failures++;
            Console.WriteLine($"KERNEL-CHECK {name} FAIL {e.GetType().Name}: {e.Message.Replace('\n', ' ')}");
        }
    }

    static void Require(bool condition, string what)
    {
        if (!condition)
            throw new InvalidOperationException(what);
    }

    static string Sh(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)}: exit {process.ExitCode} {stderr.Result.Trim()}");
        return output;
    }

    static class Record
    {
        public static Exception? Exception(Action action)
        {
            try { action(); return null; }
            catch (Exception e) { return e; }
        }
    }
}

using System.Net;
using System.Net.Sockets;
using Tabula.WireGuard.Keys;
using Tabula.WireGuard.Tests.Support;
using Tabula.WireGuard.Uapi;

namespace Tabula.WireGuard.Tests;

/// <summary>
/// Our UAPI client against Debian's wireguard-go in a fresh network namespace, cross-checked with <c>wg show dump</c>
/// (wireguard-tools reading the same socket independently).
/// </summary>
public sealed class WireGuardGoUapiTests
{
    static CancellationToken Timeout => new CancellationTokenSource(TimeSpan.FromSeconds(120)).Token;

    [PrivilegedFact("ip", "wireguard-go", "wg")]
    public async Task Configuration_set_through_uapi_reads_back_identically_through_our_client_and_wg_show_dump()
    {
        using var ns = NetworkNamespace.Create("uapi");
        using var daemon = WireGuardGo.Start(ns);
        var control = new UapiWireGuardControl(daemon.InterfaceName);
        using var privateKey = WireGuardKey.GeneratePrivateKey();
        using var publicKey = privateKey.DerivePublicKey();
        var peerKeys = Enumerable.Range(0, 3).Select(_ => WireGuardKey.GeneratePrivateKey().DerivePublicKey()).ToArray();
        using var psk = WireGuardKey.GeneratePresharedKey();

        await control.ApplyAsync(new DeviceUpdate
        {
            PrivateKey = privateKey, ListenPort = 51820, FirewallMark = 0x42, ReplacePeers = true,
            Peers =
            [
                new PeerUpdate
                {
                    PublicKey = peerKeys[0], PresharedKey = psk, Endpoint = IPEndPoint.Parse("192.0.2.10:51821"),
                    PersistentKeepaliveInterval = 25,
                    AllowedIps = [AllowedIp.Parse("10.99.0.2/32"), AllowedIp.Parse("fd99::2/128")],
                },
                new PeerUpdate { PublicKey = peerKeys[1], Endpoint = IPEndPoint.Parse("[2001:db8::7]:4500"), AllowedIps = [AllowedIp.Parse("10.99.1.0/24")] },
                new PeerUpdate { PublicKey = peerKeys[2] },
            ],
        }, Timeout);

        using var state = await control.GetAsync(Timeout);
        Assert.Equal(privateKey, state.PrivateKey);
        Assert.Equal(publicKey, state.PublicKey);
        Assert.Equal(51820, state.ListenPort);
        Assert.Equal(0x42u, state.FirewallMark);
        Assert.Equal(peerKeys.Select(k => k.ToBase64()).Order(), state.Peers.Select(p => p.PublicKey.ToBase64()).Order());
        var first = state.Peers.Single(p => p.PublicKey.Equals(peerKeys[0]));
        Assert.Equal(psk, first.PresharedKey);
        Assert.Equal(IPEndPoint.Parse("192.0.2.10:51821"), first.Endpoint);
        Assert.Equal(25, first.PersistentKeepaliveInterval);
        Assert.Equal(1, first.ProtocolVersion);
        Assert.Equal([AllowedIp.Parse("10.99.0.2/32"), AllowedIp.Parse("fd99::2/128")], first.AllowedIps);
        Assert.Null(first.LastHandshake);

        var dump = WgDump.Read(ns, daemon.InterfaceName);
        Assert.Equal(privateKey.ToBase64(), dump.PrivateKey);
        Assert.Equal(publicKey.ToBase64(), dump.PublicKey);
        Assert.Equal("51820", dump.ListenPort);
        Assert.Equal("0x42", dump.FirewallMark);
        Assert.Equal(state.Peers.Count, dump.Peers.Count);
        foreach (var peer in state.Peers)
        {
            var row = dump.Peers.Single(r => r.PublicKey == peer.PublicKey.ToBase64());
            Assert.Equal(peer.PresharedKey?.ToBase64() ?? "(none)", row.PresharedKey);
            Assert.Equal(peer.Endpoint is null ? "(none)" : peer.Endpoint.ToString(), row.Endpoint);
            Assert.Equal(peer.AllowedIps.Select(ip => ip.ToString()), row.AllowedIps);
            Assert.Equal(peer.PersistentKeepaliveInterval == 0 ? "off" : peer.PersistentKeepaliveInterval.ToString(), row.PersistentKeepalive);
            Assert.Equal(peer.ReceiveBytes, row.ReceiveBytes);
            Assert.Equal(peer.TransmitBytes, row.TransmitBytes);
        }
        foreach (var k in peerKeys) k.Dispose();
    }

    [PrivilegedFact("ip", "wireguard-go", "wg")]
    public async Task Deltas_remove_update_only_and_replace_allowed_ips_behave_as_wg_shows()
    {
        using var ns = NetworkNamespace.Create("delta");
        using var daemon = WireGuardGo.Start(ns);
        var control = new UapiWireGuardControl(daemon.InterfaceName);
        using var a = WireGuardKey.GeneratePrivateKey().DerivePublicKey();
        using var b = WireGuardKey.GeneratePrivateKey().DerivePublicKey();
        using var ghost = WireGuardKey.GeneratePrivateKey().DerivePublicKey();
        await control.ApplyAsync(new DeviceUpdate
        {
            Peers =
            [
                new PeerUpdate { PublicKey = a, AllowedIps = [AllowedIp.Parse("10.1.0.1/32"), AllowedIp.Parse("10.1.0.2/32")] },
                new PeerUpdate { PublicKey = b, AllowedIps = [AllowedIp.Parse("10.2.0.1/32")] },
            ],
        }, Timeout);
        await control.ApplyAsync(new DeviceUpdate
        {
            Peers =
            [
                new PeerUpdate { PublicKey = a, ReplaceAllowedIps = true, AllowedIps = [AllowedIp.Parse("10.1.0.9/32")] },
                PeerUpdate.RemovePeer(b),
                new PeerUpdate { PublicKey = ghost, UpdateOnly = true, AllowedIps = [AllowedIp.Parse("10.3.0.1/32")] },
            ],
        }, Timeout);

        var dump = WgDump.Read(ns, daemon.InterfaceName);
        var row = Assert.Single(dump.Peers);
        Assert.Equal(a.ToBase64(), row.PublicKey);
        Assert.Equal(["10.1.0.9/32"], row.AllowedIps);
    }

    [PrivilegedFact("ip", "wireguard-go", "wg")]
    public async Task Configuration_made_with_wg_set_is_read_by_our_client()
    {
        using var ns = NetworkNamespace.Create("wgset");
        using var daemon = WireGuardGo.Start(ns);
        string key = Prerequisites.Run("wg", "genkey").Trim();
        string peer = Prerequisites.Run("wg", ["pubkey"], Prerequisites.Run("wg", "genkey")).Trim();
        string keyFile = Path.GetTempFileName();
        await File.WriteAllTextAsync(keyFile, key + "\n");
        try
        {
            ns.Exec("wg", "set", daemon.InterfaceName, "private-key", keyFile, "listen-port", "40000",
                "peer", peer, "endpoint", "198.51.100.1:9", "allowed-ips", "10.7.0.0/16,fd07::/64", "persistent-keepalive", "15");
        }
        finally { File.Delete(keyFile); }

        using var state = await new UapiWireGuardControl(daemon.InterfaceName).GetAsync(Timeout);
        Assert.Equal(key, state.PrivateKey!.ToBase64());
        Assert.Equal(40000, state.ListenPort);
        var p = Assert.Single(state.Peers);
        Assert.Equal(peer, p.PublicKey.ToBase64());
        Assert.Equal(IPEndPoint.Parse("198.51.100.1:9"), p.Endpoint);
        Assert.Equal(15, p.PersistentKeepaliveInterval);
        Assert.Equal([AllowedIp.Parse("10.7.0.0/16"), AllowedIp.Parse("fd07::/64")], p.AllowedIps);
    }

    [PrivilegedFact("ip", "wireguard-go")]
    public async Task A_listen_port_already_bound_in_the_namespace_gives_EADDRINUSE()
    {
        using var ns = NetworkNamespace.Create("port");
        using var daemon = WireGuardGo.Start(ns);
        using var blocker = ns.RunInside(() =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(IPAddress.Any, 0));
            return socket;
        });
        int port = ((IPEndPoint)blocker.LocalEndPoint!).Port;
        var e = await Assert.ThrowsAsync<WireGuardDeviceException>(() =>
            new UapiWireGuardControl(daemon.InterfaceName).ApplyAsync(new DeviceUpdate { ListenPort = (ushort)port }, Timeout));
        Assert.Equal("EADDRINUSE", e.ErrorName);
    }

    [PrivilegedFact("ip", "wireguard-go", "wg")]
    public async Task Ten_thousand_peers_stream_in_one_update_and_all_read_back()
    {
        using var ns = NetworkNamespace.Create("many");
        using var daemon = WireGuardGo.Start(ns);
        var control = new UapiWireGuardControl(daemon.InterfaceName);
        var keys = new List<WireGuardKey>();
        IEnumerable<PeerUpdate> Peers()
        {
            for (int i = 0; i < 10_000; i++)
            {
                var key = WireGuardKey.GeneratePrivateKey().DerivePublicKey();
                keys.Add(key);
                yield return new PeerUpdate
                {
                    PublicKey = key,
                    AllowedIps = [new AllowedIp(new IPAddress(new byte[] { 10, 100, (byte)(i >> 8), (byte)i }), 32)],
                };
            }
        }
        await control.ApplyAsync(new DeviceUpdate { ReplacePeers = true, Peers = Peers() }, Timeout);
        using var state = await control.GetAsync(Timeout);
        Assert.Equal(10_000, state.Peers.Count);
        Assert.Equal(keys.Select(k => k.ToHex()).Order(), state.Peers.Select(p => p.PublicKey.ToHex()).Order());
        Assert.Equal(10_000, WgDump.Read(ns, daemon.InterfaceName).Peers.Count);

        // A second full set replaces the first: replace_peers, not a merge.
        keys.Clear();
        await control.ApplyAsync(new DeviceUpdate { ReplacePeers = true, Peers = Peers().Take(10) }, Timeout);
        using var replaced = await control.GetAsync(Timeout);
        Assert.Equal(10, replaced.Peers.Count);
    }

    [PrivilegedFact("ip", "wireguard-go")]
    public async Task A_daemon_that_exits_is_reported_as_no_daemon()
    {
        using var ns = NetworkNamespace.Create("gone");
        var daemon = WireGuardGo.Start(ns);
        string name = daemon.InterfaceName;
        daemon.Dispose();
        var e = await Assert.ThrowsAsync<WireGuardUnavailableException>(() => new UapiWireGuardControl(name).GetAsync(Timeout));
        Assert.Equal(UnavailableReason.NoDaemon, e.Reason);
    }
}

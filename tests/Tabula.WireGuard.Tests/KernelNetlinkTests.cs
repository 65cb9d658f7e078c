using System.Net;
using Tabula.Linux;
using Tabula.WireGuard.Kernel;
using Tabula.WireGuard.Keys;
using Tabula.WireGuard.Tests.Support;

namespace Tabula.WireGuard.Tests;

/// <summary>
/// The wireguard generic-netlink family against the real kernel, over Tabula.Linux's netlink (whose own tests cover
/// family resolution and link handling). The WireGuard family tests need the module (absent from this machine kind's kernel: they skip with a
/// reason, and run in a guest that has it with TABULA_REQUIRE_KERNEL_WIREGUARD=1).
/// </summary>
public sealed class KernelNetlinkTests
{
    [Fact]
    public void Without_kernel_wireguard_the_kernel_client_says_so()
    {
        if (Directory.Exists("/sys/module/wireguard"))
            return;   // covered by the module tests below
        var e = Assert.Throws<WireGuardUnavailableException>(() => new KernelWireGuardControl("wg0").Get());
        Assert.Equal(UnavailableReason.NoKernelSupport, e.Reason);
    }

    [PrivilegedFact("ip")]
    public void Creating_a_wireguard_link_without_the_module_is_EOPNOTSUPP()
    {
        if (KernelWireGuard.IsAvailable)
            return;   // covered by the module tests below
        using var ns = NetworkNamespace.Create("nomod");
        var e = ns.RunInside(() => Assert.Throws<LinuxException>(() => Links.CreateWireGuard("wg0")));
        Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
    }

    [KernelWireGuardFact("ip", "wg")]
    public void Kernel_device_configured_through_netlink_reads_back_through_our_client_and_wg_show_dump()
    {
        using var ns = NetworkNamespace.Create("kwg");
        using var privateKey = WireGuardKey.GeneratePrivateKey();
        using var publicKey = privateKey.DerivePublicKey();
        using var psk = WireGuardKey.GeneratePresharedKey();
        var peers = Enumerable.Range(0, 2000).Select(_ => WireGuardKey.GeneratePrivateKey().DerivePublicKey()).ToArray();
        var control = new KernelWireGuardControl("wgk0");
        using var state = ns.RunInside(() =>
        {
            Links.CreateWireGuard("wgk0");
            control.Apply(new DeviceUpdate
            {
                PrivateKey = privateKey, ListenPort = 51820, FirewallMark = 7, ReplacePeers = true,
                Peers = peers.Select((k, i) => new PeerUpdate
                {
                    PublicKey = k,
                    PresharedKey = i == 0 ? psk : null,
                    Endpoint = i == 0 ? IPEndPoint.Parse("192.0.2.1:9") : null,
                    PersistentKeepaliveInterval = i == 0 ? (ushort)25 : null,
                    // Peer 0 gets enough allowed IPs to be split across messages.
                    AllowedIps = i == 0
                        ? Enumerable.Range(0, 2000).Select(j => new AllowedIp(new IPAddress(new byte[] { 10, 50, (byte)(j >> 8), (byte)j }), 32)).ToArray()
                        : [new AllowedIp(new IPAddress(new byte[] { 10, 60, (byte)(i >> 8), (byte)i }), 32)],
                }),
            });
            Assert.True(control.LastMessageCount > 1);
            return control.Get();
        });
        Assert.Equal(privateKey, state.PrivateKey);
        Assert.Equal(publicKey, state.PublicKey);
        Assert.Equal(51820, state.ListenPort);
        Assert.Equal(7u, state.FirewallMark);
        Assert.Equal(2000, state.Peers.Count);
        var first = state.Peers.Single(p => p.PublicKey.Equals(peers[0]));
        Assert.Equal(2000, first.AllowedIps.Count);
        Assert.Equal(psk, first.PresharedKey);

        var dump = WgDump.Read(ns, "wgk0");
        Assert.Equal(privateKey.ToBase64(), dump.PrivateKey);
        Assert.Equal(2000, dump.Peers.Count);
        var row = dump.Peers.Single(r => r.PublicKey == peers[0].ToBase64());
        Assert.Equal(2000, row.AllowedIps.Length);
        Assert.Equal("192.0.2.1:9", row.Endpoint);
        Assert.Equal("25", row.PersistentKeepalive);
        foreach (var k in peers) k.Dispose();
    }

    [KernelWireGuardFact("ip")]
    public void Kernel_client_on_a_missing_interface_is_no_such_interface()
    {
        using var ns = NetworkNamespace.Create("kmiss");
        var e = ns.RunInside(() => Assert.Throws<WireGuardUnavailableException>(() => new KernelWireGuardControl("wgnone0").Get()));
        Assert.Equal(UnavailableReason.NoSuchInterface, e.Reason);
    }
}

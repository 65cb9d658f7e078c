using System.Net;
using Tabula.WireGuard.Kernel;
using Tabula.WireGuard.Keys;
using Tabula.WireGuard.Tests.Support;
using Tabula.WireGuard.Uapi;

namespace Tabula.WireGuard.Tests;

/// <summary>
/// Two WireGuard endpoints in two namespaces joined by a veth pair, configured only through our clients, complete a
/// real handshake and carry a ping.
/// <code>
///   ns A                                   ns B
///   wg A 10.202.0.1/24 ── UDP 51820 ──── wg B 10.202.0.2/24
///   veth 10.201.0.1/24 ─────────────── veth 10.201.0.2/24
/// </code>
/// </summary>
public sealed class TunnelTests
{
    static CancellationToken Timeout => new CancellationTokenSource(TimeSpan.FromSeconds(120)).Token;

    sealed class Side(NetworkNamespace ns, string wg, IWireGuardControl control, WireGuardKey key, string underlay, string overlay)
        : IDisposable
    {
        public NetworkNamespace Ns => ns;
        public string Interface => wg;
        public IWireGuardControl Control => control;
        public WireGuardKey PrivateKey => key;
        public WireGuardKey PublicKey { get; } = key.DerivePublicKey();
        public string Underlay => underlay;
        public string Overlay => overlay;
        public void Dispose() { key.Dispose(); PublicKey.Dispose(); }
    }

    static (NetworkNamespace a, NetworkNamespace b) Namespaces()
    {
        var a = NetworkNamespace.Create("tunA");
        var b = NetworkNamespace.Create("tunB");
        string vethA = $"va{Environment.ProcessId % 100000}";
        string vethB = $"vb{Environment.ProcessId % 100000}";
        Prerequisites.Run("ip", "link", "add", vethA, "netns", a.Name, "type", "veth", "peer", "name", vethB, "netns", b.Name);
        a.Ip("addr", "add", "10.201.0.1/24", "dev", vethA);
        b.Ip("addr", "add", "10.201.0.2/24", "dev", vethB);
        a.Ip("link", "set", vethA, "up");
        b.Ip("link", "set", vethB, "up");
        return (a, b);
    }

    static async Task ConfigureAndPing(Side a, Side b)
    {
        foreach (var (self, other) in new[] { (a, b), (b, a) })
        {
            await self.Control.ApplyAsync(new DeviceUpdate
            {
                PrivateKey = self.PrivateKey, ListenPort = 51820, ReplacePeers = true,
                Peers =
                [
                    new PeerUpdate
                    {
                        PublicKey = other.PublicKey, Endpoint = new IPEndPoint(IPAddress.Parse(other.Underlay), 51820),
                        ReplaceAllowedIps = true, AllowedIps = [AllowedIp.Parse(other.Overlay + "/32")],
                    },
                ],
            }, Timeout);
            self.Ns.Ip("addr", "add", self.Overlay + "/24", "dev", self.Interface);
            self.Ns.RunInside(() => Links.SetUp(self.Interface));   // our rtnetlink, not ip
        }

        string output = a.Ns.Exec("ping", "-c", "3", "-i", "0.2", "-W", "5", b.Overlay);
        Assert.Contains("3 received", output);

        foreach (var (self, other) in new[] { (a, b), (b, a) })
        {
            using var state = await self.Control.GetAsync(Timeout);
            var peer = Assert.Single(state.Peers);
            Assert.Equal(other.PublicKey, peer.PublicKey);
            Assert.NotNull(peer.LastHandshake);
            Assert.InRange(peer.LastHandshake!.Value, DateTimeOffset.UtcNow.AddMinutes(-2), DateTimeOffset.UtcNow.AddMinutes(1));
            // 3 echo requests + 3 replies of 84 bytes each way, sealed, plus the handshake: well over 148 + 92.
            Assert.True(peer.ReceiveBytes > 300 && peer.TransmitBytes > 300, $"rx {peer.ReceiveBytes} tx {peer.TransmitBytes}");
            Assert.Equal(IPEndPoint.Parse(other.Underlay + ":51820"), peer.Endpoint);

            var row = Assert.Single(WgDump.Read(self.Ns, self.Interface).Peers);
            Assert.Equal(peer.LastHandshake!.Value.ToUnixTimeSeconds(), row.LatestHandshake);
        }
    }

    [PrivilegedFact("ip", "wireguard-go", "wg", "ping")]
    public async Task Two_wireguard_go_endpoints_configured_through_uapi_handshake_and_pass_a_ping()
    {
        var (nsA, nsB) = Namespaces();
        using var _a = nsA;
        using var _b = nsB;
        using var goA = WireGuardGo.Start(nsA, WireGuardGo.UniqueName('a'));
        using var goB = WireGuardGo.Start(nsB, WireGuardGo.UniqueName('b'));
        using var a = new Side(nsA, goA.InterfaceName, new UapiWireGuardControl(goA.InterfaceName), WireGuardKey.GeneratePrivateKey(), "10.201.0.1", "10.202.0.1");
        using var b = new Side(nsB, goB.InterfaceName, new UapiWireGuardControl(goB.InterfaceName), WireGuardKey.GeneratePrivateKey(), "10.201.0.2", "10.202.0.2");
        await ConfigureAndPing(a, b);
    }

    [KernelWireGuardFact("ip", "wg", "ping")]
    public async Task Kernel_endpoint_configured_through_netlink_and_wireguard_go_through_uapi_handshake_and_pass_a_ping()
    {
        var (nsA, nsB) = Namespaces();
        using var _a = nsA;
        using var _b = nsB;
        string kernelName = WireGuardGo.UniqueName('k');
        nsA.RunInside(() => Links.CreateWireGuard(kernelName));
        using var goB = WireGuardGo.Start(nsB, WireGuardGo.UniqueName('b'));
        var kernel = new ThreadBoundControl(nsA, new KernelWireGuardControl(kernelName));
        using var a = new Side(nsA, kernelName, kernel, WireGuardKey.GeneratePrivateKey(), "10.201.0.1", "10.202.0.1");
        using var b = new Side(nsB, goB.InterfaceName, new UapiWireGuardControl(goB.InterfaceName), WireGuardKey.GeneratePrivateKey(), "10.201.0.2", "10.202.0.2");
        await ConfigureAndPing(a, b);
    }
}

/// <summary>Runs a kernel control's calls on a thread inside a namespace (its netlink socket binds there).</summary>
internal sealed class ThreadBoundControl(NetworkNamespace ns, KernelWireGuardControl inner) : IWireGuardControl
{
    public string InterfaceName => inner.InterfaceName;

    public Task ApplyAsync(DeviceUpdate update, CancellationToken cancellationToken = default)
    {
        ns.RunInside(() => inner.Apply(update, cancellationToken));
        return Task.CompletedTask;
    }

    public Task<DeviceState> GetAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(ns.RunInside(() => inner.Get(cancellationToken)));
}

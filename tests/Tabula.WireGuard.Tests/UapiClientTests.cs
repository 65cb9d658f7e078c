using System.Net;
using System.Net.Sockets;
using System.Text;
using Tabula.WireGuard.Keys;
using Tabula.WireGuard.Tests.Support;
using Tabula.WireGuard.Uapi;

namespace Tabula.WireGuard.Tests;

/// <summary>The UAPI client against scripted fake daemons: framing, errno handling, limits, streaming.</summary>
public sealed class UapiClientTests
{
    static readonly CancellationToken Timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token;

    static IEnumerable<PeerUpdate> Peers(int count)
    {
        var bytes = new byte[32];
        for (int i = 0; i < count; i++)
        {
            BitConverter.TryWriteBytes(bytes, i);
            bytes[31] = 0x5a;
            yield return new PeerUpdate
            {
                PublicKey = new WireGuardKey(bytes),
                AllowedIps = [new AllowedIp(new IPAddress(new byte[] { 10, (byte)(i >> 16), (byte)(i >> 8), (byte)i }), 32)],
            };
        }
    }

    [Fact]
    public async Task Set_sends_the_request_and_accepts_errno_zero()
    {
        string? received = null;
        await using var server = new FakeUapiServer("fake0", async (client, ct) =>
        {
            received = await FakeUapiServer.ReadRequestAsync(client, ct);
            await FakeUapiServer.SendAsync(client, "errno=0\n\n", ct);
        });
        var control = new UapiWireGuardControl("fake0", server.Directory);
        await control.ApplyAsync(new DeviceUpdate { ListenPort = 1234 }, Timeout);
        Assert.Equal("set=1\nlisten_port=1234\n", received);
    }

    [Fact]
    public async Task Negative_errno_from_set_becomes_a_device_exception_with_the_positive_code()
    {
        await using var server = new FakeUapiServer("fake1", async (client, ct) =>
        {
            await FakeUapiServer.ReadRequestAsync(client, ct);
            await FakeUapiServer.SendAsync(client, "errno=-98\n\n", ct);
        });
        var e = await Assert.ThrowsAsync<WireGuardDeviceException>(() =>
            new UapiWireGuardControl("fake1", server.Directory).ApplyAsync(new DeviceUpdate { ListenPort = 1 }, Timeout));
        Assert.Equal(98, e.ErrorCode);
        Assert.Equal("EADDRINUSE", e.ErrorName);
    }

    [Fact]
    public async Task A_daemon_that_refuses_mid_stream_and_closes_gives_its_errno_not_a_broken_pipe()
    {
        // wireguard-go answers errno=-22 at the first bad line and stops reading; the client is still writing peers.
        await using var server = new FakeUapiServer("fake2", async (client, ct) =>
        {
            await FakeUapiServer.ReadRequestAsync(client, ct, stopAfterBytes: 200_000);
            await FakeUapiServer.SendAsync(client, "errno=-22\n\n", ct);
            client.Shutdown(SocketShutdown.Both);
        });
        var e = await Assert.ThrowsAsync<WireGuardDeviceException>(() =>
            new UapiWireGuardControl("fake2", server.Directory).ApplyAsync(new DeviceUpdate { Peers = Peers(100_000) }, Timeout));
        Assert.Equal(22, e.ErrorCode);
    }

    [Fact]
    public async Task Hundred_thousand_peers_stream_through_in_order_without_buffering_the_request()
    {
        long peers = 0, bytes = 0;
        await using var server = new FakeUapiServer("fake3", async (client, ct) =>
        {
            var buffer = new byte[65536];
            var tail = new StringBuilder();
            while (true)
            {
                int n = await client.ReceiveAsync(buffer, ct);
                if (n == 0) return;
                bytes += n;
                tail.Append(Encoding.ASCII.GetString(buffer, 0, n));
                string text = tail.ToString();
                int last = text.LastIndexOf('\n');
                foreach (string line in text[..(last + 1)].Split('\n'))
                    if (line.StartsWith("public_key=", StringComparison.Ordinal))
                        peers++;
                tail.Clear().Append(text[(last + 1)..]);
                if (text.EndsWith("\n\n", StringComparison.Ordinal))
                    break;
            }
            await FakeUapiServer.SendAsync(client, "errno=0\n\n", ct);
        });
        await new UapiWireGuardControl("fake3", server.Directory).ApplyAsync(
            new DeviceUpdate { ReplacePeers = true, Peers = Peers(100_000) }, Timeout);
        Assert.Equal(100_000, peers);
        Assert.True(bytes > 10_000_000, $"{bytes} bytes");
    }

    [Fact]
    public async Task Get_reply_with_an_overlong_line_is_refused()
    {
        await using var server = new FakeUapiServer("fake4", async (client, ct) =>
        {
            await FakeUapiServer.ReadRequestAsync(client, ct);
            await FakeUapiServer.SendAsync(client, "listen_port=1\nfuture=" + new string('x', 5000) + "\nerrno=0\n\n", ct);
        });
        var e = await Assert.ThrowsAsync<WireGuardProtocolException>(() =>
            new UapiWireGuardControl("fake4", server.Directory).GetAsync(Timeout));
        Assert.Equal(ProtocolError.LineTooLong, e.Reason);
    }

    [Fact]
    public async Task Get_reply_cut_before_the_empty_line_is_truncated()
    {
        await using var server = new FakeUapiServer("fake5", async (client, ct) =>
        {
            await FakeUapiServer.ReadRequestAsync(client, ct);
            await FakeUapiServer.SendAsync(client, "listen_port=1\nerrno=0\n", ct);
        });
        var e = await Assert.ThrowsAsync<WireGuardProtocolException>(() =>
            new UapiWireGuardControl("fake5", server.Directory).GetAsync(Timeout));
        Assert.Equal(ProtocolError.Truncated, e.Reason);
    }

    [Fact]
    public async Task Get_reply_without_errno_is_refused()
    {
        await using var server = new FakeUapiServer("fake6", async (client, ct) =>
        {
            await FakeUapiServer.ReadRequestAsync(client, ct);
            await FakeUapiServer.SendAsync(client, "listen_port=1\n\n", ct);
        });
        var e = await Assert.ThrowsAsync<WireGuardProtocolException>(() =>
            new UapiWireGuardControl("fake6", server.Directory).GetAsync(Timeout));
        Assert.Equal(ProtocolError.MissingErrno, e.Reason);
    }

    [Fact]
    public async Task Set_reply_with_extra_lines_is_refused()
    {
        await using var server = new FakeUapiServer("fake7", async (client, ct) =>
        {
            await FakeUapiServer.ReadRequestAsync(client, ct);
            await FakeUapiServer.SendAsync(client, "listen_port=1\nerrno=0\n\n", ct);
        });
        var e = await Assert.ThrowsAsync<WireGuardProtocolException>(() =>
            new UapiWireGuardControl("fake7", server.Directory).ApplyAsync(new DeviceUpdate(), Timeout));
        Assert.Equal(ProtocolError.MissingErrno, e.Reason);
    }

    [Fact]
    public async Task Missing_socket_means_no_daemon()
    {
        string dir = Path.Combine(Path.GetTempPath(), "tbwg-none-" + Guid.NewGuid().ToString("N")[..8]);
        var e = await Assert.ThrowsAsync<WireGuardUnavailableException>(() =>
            new UapiWireGuardControl("nothere0", dir).GetAsync(Timeout));
        Assert.Equal(UnavailableReason.NoDaemon, e.Reason);
    }

    [Fact]
    public async Task Invalid_peer_is_reported_when_reached_and_nothing_after_it_is_sent()
    {
        string? received = null;
        await using var server = new FakeUapiServer("fake8", async (client, ct) =>
        {
            received = await FakeUapiServer.ReadRequestAsync(client, ct) ?? "(eof)";
        });
        using var key = WireGuardKey.GeneratePrivateKey();
        var bad = new PeerUpdate { PublicKey = key, Remove = true, UpdateOnly = true };
        await Assert.ThrowsAsync<ArgumentException>(() =>
            new UapiWireGuardControl("fake8", server.Directory).ApplyAsync(new DeviceUpdate { Peers = [bad] }, Timeout));
    }
}

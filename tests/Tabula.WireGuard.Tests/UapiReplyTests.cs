using System.Net;
using System.Text;
using Tabula.WireGuard.Uapi;

namespace Tabula.WireGuard.Tests;

public sealed class UapiReplyTests
{
    const string PeerKey = "248d1b5eb43a470113de70d62cf9ea4ab17ac33ecbd54a12f4cfdb641a9fb415";
    static readonly string PrivateKey = new string('5', 63) + "8";

    // The shape captured from wireguard-go 0.0.20220316 in the reference notes (secrets replaced).
    static readonly string Captured =
        $"private_key={PrivateKey}\n" +
        "listen_port=51820\n" +
        $"public_key={PeerKey}\n" +
        $"preshared_key={new string('0', 64)}\n" +
        "protocol_version=1\n" +
        "endpoint=10.211.0.1:43754\n" +
        "last_handshake_time_sec=1795786952\n" +
        "last_handshake_time_nsec=870057439\n" +
        "tx_bytes=172\n" +
        "rx_bytes=228\n" +
        "persistent_keepalive_interval=0\n" +
        "allowed_ip=10.212.0.1/32\n" +
        "errno=0\n" +
        "\n";

    static DeviceState Parse(string reply)
    {
        using var parser = new UapiGetParser();
        foreach (string line in reply.Split('\n'))
            if (!parser.Accept(Encoding.Latin1.GetBytes(line)))
                break;
        Assert.Equal(0, parser.Errno);
        return parser.ToDeviceState("wg0");
    }

    [Fact]
    public void Captured_wireguard_go_reply_parses_into_device_and_peer()
    {
        using var state = Parse(Captured);
        Assert.Equal(PrivateKey, state.PrivateKey!.ToHex());
        Assert.NotNull(state.PublicKey);
        Assert.Equal(51820, state.ListenPort);
        var peer = Assert.Single(state.Peers);
        Assert.Equal(PeerKey, peer.PublicKey.ToHex());
        Assert.Null(peer.PresharedKey);
        Assert.Equal(IPEndPoint.Parse("10.211.0.1:43754"), peer.Endpoint);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1795786952).AddTicks(8700574), peer.LastHandshake);
        Assert.Equal(172UL, peer.TransmitBytes);
        Assert.Equal(228UL, peer.ReceiveBytes);
        Assert.Equal(1, peer.ProtocolVersion);
        Assert.Equal([AllowedIp.Parse("10.212.0.1/32")], peer.AllowedIps);
    }

    [Fact]
    public void Unknown_keys_are_ignored_like_wg_does()
    {
        using var state = Parse(Captured.Replace("tx_bytes=172\n", "tx_bytes=172\nfuture_key=whatever\n"));
        Assert.Single(state.Peers);
    }

    [Fact]
    public void Peer_without_handshake_has_no_last_handshake()
    {
        using var state = Parse(Captured.Replace("1795786952", "0").Replace("870057439", "0"));
        Assert.Null(state.Peers[0].LastHandshake);
    }

    [Theory]
    [InlineData("listen_port=51820\n", "listen_port=65536\n", ProtocolError.InvalidValue)]
    [InlineData("listen_port=51820\n", "listen_port=-1\n", ProtocolError.InvalidValue)]
    [InlineData("listen_port=51820\n", "listen_port= 1\n", ProtocolError.InvalidValue)]
    [InlineData("tx_bytes=172\n", "tx_bytes=18446744073709551616\n", ProtocolError.InvalidValue)]
    [InlineData("tx_bytes=172\n", "tx_bytes\n", ProtocolError.MalformedLine)]
    [InlineData("tx_bytes=172\n", "=172\n", ProtocolError.MalformedLine)]
    [InlineData("tx_bytes=172\n", "tx_bytes=1\u00e972\n", ProtocolError.MalformedLine)]
    [InlineData("endpoint=10.211.0.1:43754\n", "endpoint=10.211.0.1\n", ProtocolError.InvalidValue)]
    [InlineData("allowed_ip=10.212.0.1/32\n", "allowed_ip=10.212.0.1/40\n", ProtocolError.InvalidValue)]
    [InlineData("allowed_ip=10.212.0.1/32\n", "allowed_ip=10.212.0.1\n", ProtocolError.InvalidValue)]
    [InlineData("last_handshake_time_nsec=870057439\n", "last_handshake_time_nsec=1000000000\n", ProtocolError.InvalidValue)]
    [InlineData("public_key=248d", "public_key=zz8d", ProtocolError.InvalidValue)]
    // Found by fuzzing (tests/Tabula.Fuzz corpus WireGuardUapi/uapi_bad_handshake_after_year_9999.txt): past year 9999
    // the time did not fit a DateTimeOffset and the parser threw ArgumentOutOfRangeException.
    [InlineData("last_handshake_time_sec=1795786952\n", "last_handshake_time_sec=253402300800\n", ProtocolError.InvalidValue)]
    [InlineData("last_handshake_time_sec=1795786952\n", "last_handshake_time_sec=17957895786952\n", ProtocolError.InvalidValue)]
    [InlineData("listen_port=51820\n", "listen_port=51820\nallowed_ip=10.0.0.1/32\n", ProtocolError.PeerKeyOutsidePeer)]
    [InlineData("errno=0\n", "errno=0\ntx_bytes=1\n", ProtocolError.MalformedLine)]
    public void Malformed_replies_are_refused_with_a_reason_and_no_value_in_the_message(string from, string to, ProtocolError reason)
    {
        var e = Assert.Throws<WireGuardProtocolException>(() => Parse(Captured.Replace(from, to)));
        Assert.Equal(reason, e.Reason);
        Assert.DoesNotContain("10.21", e.Message);
        Assert.DoesNotContain(PeerKey[..12], e.Message);
    }
}

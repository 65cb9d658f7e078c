using System.Net;
using System.Text;
using Tabula.WireGuard.Keys;
using Tabula.WireGuard.Uapi;

namespace Tabula.WireGuard.Tests;

public sealed class UapiEncodingTests
{
    static WireGuardKey Key(byte fill) => new(Enumerable.Repeat(fill, 32).ToArray());

    static string Encode(DeviceUpdate update, int capacity = 65536)
    {
        var encoder = new UapiSetEncoder(capacity);
        var text = new StringBuilder();
        encoder.WriteDevice(update);
        foreach (var peer in update.Peers)
        {
            peer.Validate();
            int next = -1;
            while (!encoder.TryWritePeer(peer, ref next))
            {
                text.Append(encoder.ToString());
                encoder.Clear();
            }
        }
        Assert.True(encoder.TryWriteEnd());
        return text.Append(encoder.ToString()).ToString();
    }

    [Fact]
    public void Device_and_peer_keys_are_written_in_wg_order()
    {
        using var privateKey = Key(0x11);
        using var peerKey = Key(0x22);
        using var psk = Key(0x33);
        string text = Encode(new DeviceUpdate
        {
            PrivateKey = privateKey, ListenPort = 51820, FirewallMark = 0x1234, ReplacePeers = true,
            Peers =
            [
                new PeerUpdate
                {
                    PublicKey = peerKey, UpdateOnly = true, PresharedKey = psk,
                    Endpoint = IPEndPoint.Parse("192.0.2.1:51820"), PersistentKeepaliveInterval = 25,
                    ReplaceAllowedIps = true,
                    AllowedIps = [AllowedIp.Parse("10.0.0.2/32"), AllowedIp.Parse("fd00::2/128")],
                },
            ],
        });
        Assert.Equal(
            "set=1\n" +
            $"private_key={new string('1', 64)}\n" +
            "listen_port=51820\n" +
            "fwmark=4660\n" +
            "replace_peers=true\n" +
            $"public_key={new string('2', 64)}\n" +
            "update_only=true\n" +
            $"preshared_key={new string('3', 64)}\n" +
            "endpoint=192.0.2.1:51820\n" +
            "persistent_keepalive_interval=25\n" +
            "replace_allowed_ips=true\n" +
            "allowed_ip=10.0.0.2/32\n" +
            "allowed_ip=fd00::2/128\n" +
            "\n", text);
    }

    [Fact]
    public void Removed_peer_is_its_public_key_and_remove_only()
    {
        using var peerKey = Key(0xab);
        Assert.Equal($"set=1\npublic_key={new string('a', 32).Replace("a", "ab")}\nremove=true\n\n",
            Encode(new DeviceUpdate { Peers = [PeerUpdate.RemovePeer(peerKey)] }));
    }

    [Fact]
    public void IPv6_endpoints_are_bracketed_with_their_scope()
    {
        using var peerKey = Key(1);
        string text = Encode(new DeviceUpdate
        {
            Peers = [new PeerUpdate { PublicKey = peerKey, Endpoint = new IPEndPoint(IPAddress.Parse("fe80::1%3"), 443) }],
        });
        Assert.Contains("\nendpoint=[fe80::1%3]:443\n", text);
    }

    [Fact]
    public void Zero_keys_remove_private_and_preshared_keys()
    {
        using var zero = WireGuardKey.Zero();
        using var peerKey = Key(1);
        string text = Encode(new DeviceUpdate { PrivateKey = zero, Peers = [new PeerUpdate { PublicKey = peerKey, PresharedKey = zero }] });
        Assert.Contains($"private_key={new string('0', 64)}\n", text);
        Assert.Contains($"preshared_key={new string('0', 64)}\n", text);
    }

    [Fact]
    public void A_small_buffer_splits_the_request_only_between_lines_and_gives_the_same_text()
    {
        var keys = Enumerable.Range(0, 50).Select(i => Key((byte)i)).ToArray();
        var update = new DeviceUpdate
        {
            ReplacePeers = true,
            Peers = keys.Select((k, i) => new PeerUpdate
            {
                PublicKey = k,
                AllowedIps = Enumerable.Range(0, i).Select(j => new AllowedIp(new IPAddress([10, (byte)i, (byte)j, 0]), 24)).ToArray(),
            }).ToArray(),
        };
        Assert.Equal(Encode(update), Encode(update, capacity: 600));
        foreach (var k in keys) k.Dispose();
    }

    [Fact]
    public void A_removing_peer_that_sets_other_fields_is_a_programming_error()
    {
        using var peerKey = Key(1);
        var peer = new PeerUpdate { PublicKey = peerKey, Remove = true, AllowedIps = [AllowedIp.Parse("10.0.0.1/32")] };
        Assert.Throws<ArgumentException>(peer.Validate);
    }

    [Theory]
    [InlineData("10.0.0.1/32", true)]
    [InlineData("10.0.0.0/8", true)]
    [InlineData("0.0.0.0/0", true)]
    [InlineData("::/0", true)]
    [InlineData("fd00::1/128", true)]
    [InlineData("10.0.0.1", true)]
    [InlineData("10.0.0.1/33", false)]
    [InlineData("fd00::1/129", false)]
    [InlineData("10.0.0.1/", false)]
    [InlineData("10.0.0.1/-1", false)]
    [InlineData("10.0.0.1/+8", false)]
    [InlineData("fe80::1%2/64", false)]
    [InlineData("example.com/32", false)]
    public void Allowed_ip_parsing_accepts_prefixes_and_refuses_the_rest(string text, bool valid) =>
        Assert.Equal(valid, AllowedIp.TryParse(text, out _));

    [Theory]
    [InlineData("")]
    [InlineData("wg0/x")]
    [InlineData("0123456789abcdef")]
    [InlineData("wg 0")]
    [InlineData("..")]
    public void Bad_interface_names_are_programming_errors(string name) =>
        Assert.Throws<ArgumentException>(() => new UapiWireGuardControl(name));
}

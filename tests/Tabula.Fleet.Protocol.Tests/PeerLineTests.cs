using System.Text;
using Tabula.Fleet.Protocol;

namespace Tabula.Fleet.Protocol.Tests;

public sealed class PeerLineTests
{
    const string Key = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    const string Hash = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    static PeerLine Parse(string text) => PeerLine.Parse(Encoding.UTF8.GetBytes(text));

    [Fact]
    public void Parses_every_line_type_the_controller_writes()
    {
        var snapshot = Parse("""{"type":"snapshot","revision":1000000,"peers":999000}""");
        Assert.Equal((PeerLineType.Snapshot, 1000000L, 999000L), (snapshot.Type, snapshot.Revision, snapshot.Count));
        var peer = Parse($$"""{"type":"peer","public_key":"{{Key}}","allowed_ips":["10.64.0.2/32","fc00:bbbb:bbbb:bb01::2/128"]}""");
        Assert.Equal(PeerLineType.Peer, peer.Type);
        Assert.Equal(Convert.FromBase64String(Key), peer.PublicKey!.Bytes.ToArray());
        Assert.Equal(("10.64.0.2", "fc00:bbbb:bbbb:bb01::2"), (peer.Ipv4!.ToString(), peer.Ipv6!.ToString()));
        var add = Parse($$"""{"type":"add","revision":7,"public_key":"{{Key}}","allowed_ips":["10.64.0.9/32","fc00:bbbb:bbbb:bb01::9/128"],"hash":"{{Hash}}"}""");
        Assert.Equal((PeerLineType.Add, 7L), (add.Type, add.Revision));
        Assert.Equal(Convert.FromHexString(Hash), add.Hash);
        Assert.Equal(PeerLineType.Remove, Parse($$"""{"type":"remove","revision":8,"public_key":"{{Key}}","allowed_ips":["10.64.0.9/32","fc00:bbbb:bbbb:bb01::9/128"],"hash":"{{Hash}}"}""").Type);
        Assert.Equal(PeerLineType.SnapshotEnd, Parse($$"""{"type":"snapshot_end","revision":9,"hash":"{{Hash}}"}""").Type);
        Assert.Equal(PeerLineType.Heartbeat, Parse("""{"type":"heartbeat","revision":9,"future_field":{"x":[1]}}""").Type);
    }

    [Theory]
    [InlineData("", "invalid JSON")]
    [InlineData("[1]", "not a JSON object")]
    [InlineData("{\"type\":\"peer\"", "invalid JSON")]
    [InlineData("{\"type\":\"dance\",\"revision\":1}", "unknown type")]
    [InlineData("{\"revision\":1}", "no type")]
    [InlineData("{\"type\":\"heartbeat\"}", "without a revision")]
    [InlineData("{\"type\":\"snapshot\",\"revision\":1}", "without a peer count")]
    [InlineData("{\"type\":\"heartbeat\",\"revision\":\"1\"}", "wrong type")]
    [InlineData("{\"type\":\"snapshot_end\",\"revision\":1}", "without a hash")]
    [InlineData("{\"type\":\"snapshot_end\",\"revision\":1,\"hash\":\"ABCD\"}", "64 hex")]
    [InlineData("{\"type\":\"peer\",\"public_key\":\"AAAA\",\"allowed_ips\":[\"10.0.0.1/32\",\"fc00::1/128\"]}", "32 bytes")]
    [InlineData("{\"type\":\"peer\",\"public_key\":\"" + Key + "\",\"allowed_ips\":[\"10.0.0.1/24\",\"fc00::1/128\"]}", "one IPv4 /32")]
    [InlineData("{\"type\":\"peer\",\"public_key\":\"" + Key + "\",\"allowed_ips\":[\"10.0.0.1/32\"]}", "both allowed_ips")]
    [InlineData("{\"type\":\"peer\",\"public_key\":\"" + Key + "\",\"allowed_ips\":[\"10.0.0.1/32\",\"fc00::1/128\",\"fc00::2/128\"]}", "more than two")]
    [InlineData("{\"type\":\"peer\",\"public_key\":\"" + Key + "\",\"allowed_ips\":[\"fc00::1/32\",\"10.0.0.1/128\"]}", "not addresses")]
    [InlineData("{\"type\":\"peer\",\"public_key\":\"" + Key + "\",\"allowed_ips\":[1,2]}", "non-string")]
    [InlineData("{\"type\":\"heartbeat\",\"revision\":1} {}", "invalid JSON")]
    public void Refuses_malformed_lines_with_a_reason_that_never_echoes_the_key(string line, string expected)
    {
        var e = Assert.Throws<PeerStreamException>(() => Parse(line));
        Assert.Equal(PeerStreamError.MalformedLine, e.Reason);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain(Key, e.Message);
        Assert.DoesNotContain("10.0.0.1", e.Message);
    }

    [Fact]
    public void Refuses_a_line_over_the_limit()
    {
        var e = Assert.Throws<PeerStreamException>(() => PeerLine.Parse(new byte[PeerLine.MaxBytes + 1]));
        Assert.Equal(PeerStreamError.LineTooLong, e.Reason);
    }
}

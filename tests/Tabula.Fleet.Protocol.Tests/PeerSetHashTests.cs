using System.Net;

namespace Tabula.Fleet.Protocol.Tests;

public sealed class PeerSetHashTests
{
    const string Key = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

    // Computed outside .NET (Python hashlib over the documented 66-byte layout:
    // b"tabula-peer-v2" + key + IPv4 packed + IPv6 packed).
    const string OnePeer = "2d721b21b5caeea1eb3f2e423be83f47f74a2aca009bf44383d73e43ab2eca4c";
    const string TwoPeers = "08bf40660c99d0c0122f06af6ceeb28ab0aa71678927700ebd6214baab69d1d3";

    static readonly byte[] Second = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();

    [Fact]
    public void Hashes_the_documented_byte_layout()
    {
        byte[] set = PeerSetHash.Empty;
        PeerSetHash.Toggle(set, Convert.FromBase64String(Key), IPAddress.Parse("10.64.0.2"), IPAddress.Parse("fc00:bbbb:bbbb:bb01::2"));
        Assert.Equal(OnePeer, Convert.ToHexStringLower(set));
        PeerSetHash.Toggle(set, Second, "10.64.0.3", "fc00:bbbb:bbbb:bb01::3");
        Assert.Equal(TwoPeers, Convert.ToHexStringLower(set));
        PeerSetHash.Toggle(set, Second, IPAddress.Parse("10.64.0.3"), IPAddress.Parse("fc00:bbbb:bbbb:bb01::3"));
        Assert.Equal(OnePeer, Convert.ToHexStringLower(set));   // removing is the same operation
    }

    [Theory]
    [InlineData("fc00:bbbb:bbbb:bb01::2", "fc00:bbbb:bbbb:bb01:0:0:0:2")]
    [InlineData("fc00:bbbb:bbbb:bb01::2", "FC00:BBBB:BBBB:BB01:0000:0000:0000:0002")]
    public void Spellings_of_one_address_hash_alike(string a, string b)
    {
        byte[] x = PeerSetHash.Empty, y = PeerSetHash.Empty;
        PeerSetHash.Toggle(x, Second, "10.64.0.3", a);
        PeerSetHash.Toggle(y, Second, "10.64.0.3", b);
        Assert.Equal(x, y);
    }

    [Fact]
    public void Refuses_wrong_lengths_and_families()
    {
        byte[] set = PeerSetHash.Empty;
        var v4 = IPAddress.Parse("10.64.0.3");
        var v6 = IPAddress.Parse("fc00::3");
        Assert.Throws<ArgumentException>(() => PeerSetHash.Toggle(set, new byte[31], v4, v6));
        Assert.Throws<ArgumentException>(() => PeerSetHash.Toggle(set, Second, v6, v6));
        Assert.Throws<ArgumentException>(() => PeerSetHash.Toggle(set, Second, v4, v4));
        Assert.Throws<ArgumentException>(() => PeerSetHash.Toggle(new byte[16], Second, v4, v6));
    }
}

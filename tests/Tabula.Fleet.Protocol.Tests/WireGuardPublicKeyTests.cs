namespace Tabula.Fleet.Protocol.Tests;

public sealed class WireGuardPublicKeyTests
{
    [Fact]
    public void Accepts_32_bytes_of_canonical_base64_only()
    {
        string good = Convert.ToBase64String(Enumerable.Range(1, 32).Select(i => (byte)i).ToArray());
        Assert.True(WireGuardPublicKey.TryParse(good, out var key));
        Assert.Equal(32, key.Bytes.Length);
        Assert.Equal(good, key.ToBase64());
        Assert.False(WireGuardPublicKey.TryParse(Convert.ToBase64String(new byte[31]), out _));
        Assert.False(WireGuardPublicKey.TryParse(Convert.ToBase64String(new byte[33]), out _));
        Assert.False(WireGuardPublicKey.TryParse(Convert.ToBase64String(new byte[32]), out _));   // all zero: not a key
        Assert.False(WireGuardPublicKey.TryParse(good[..42] + "B=", out _));                     // non-canonical trailing bits
        Assert.False(WireGuardPublicKey.TryParse(good.Replace('=', ' '), out _));
        Assert.False(WireGuardPublicKey.TryParse(null, out _));
    }

    [Fact]
    public void Equal_keys_compare_equal_and_ToString_never_shows_the_key()
    {
        byte[] bytes = Enumerable.Range(7, 32).Select(i => (byte)i).ToArray();
        var a = WireGuardPublicKey.FromBytes(bytes);
        Assert.Equal(a, WireGuardPublicKey.FromBytes(bytes));
        Assert.Equal(a.GetHashCode(), WireGuardPublicKey.FromBytes(bytes).GetHashCode());
        bytes[31] ^= 1;
        Assert.NotEqual(a, WireGuardPublicKey.FromBytes(bytes));
        Assert.DoesNotContain(a.ToBase64(), a.ToString());
        Assert.Throws<ArgumentException>(() => WireGuardPublicKey.FromBytes(new byte[31]));
    }
}

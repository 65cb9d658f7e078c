using System.Buffers;
using System.Net;
using System.Text;
using CsCheck;

namespace Tabula.Fleet.Protocol.Tests;

public sealed class PeerLineWriterTests
{
    const string Key = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    static readonly byte[] KeyBytes = Convert.FromBase64String(Key);
    static readonly byte[] Hash = Convert.FromHexString("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");

    static string Write(Func<PeerLineWriter, int> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        int n = write(new PeerLineWriter(buffer));
        Assert.Equal(buffer.WrittenCount, n);
        return Encoding.ASCII.GetString(buffer.WrittenSpan);
    }

    [Fact]
    public void Writes_the_documented_lines_byte_for_byte()
    {
        Assert.Equal("{\"type\":\"snapshot\",\"revision\":12,\"peers\":3}\n", Write(w => w.SnapshotBegin(12, 3)));
        Assert.Equal($"{{\"type\":\"peer\",\"public_key\":\"{Key}\",\"allowed_ips\":[\"10.64.0.2/32\",\"fc00:bbbb:bbbb:bb01::2/128\"]}}\n",
            Write(w => w.Peer(KeyBytes, "10.64.0.2", "fc00:bbbb:bbbb:bb01::2")));
        Assert.Equal("{\"type\":\"snapshot_end\",\"revision\":12,\"hash\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}\n",
            Write(w => w.SnapshotEnd(12, Hash)));
        Assert.Equal($"{{\"type\":\"remove\",\"revision\":13,\"public_key\":\"{Key}\",\"allowed_ips\":[\"10.64.0.2/32\",\"fc00:bbbb:bbbb:bb01::2/128\"],\"hash\":\"{Convert.ToHexStringLower(Hash)}\"}}\n",
            Write(w => w.Change(false, 13, KeyBytes, "10.64.0.2", "fc00:bbbb:bbbb:bb01::2", Hash)));
        Assert.Equal("{\"type\":\"heartbeat\",\"revision\":13}\n", Write(w => w.Heartbeat(13)));
    }

    [Fact]
    public void What_the_writer_writes_the_reader_reads_back()
    {
        var gen = Gen.Select(Gen.Byte.Array[32], Gen.UInt, Gen.Byte.Array[16], Gen.Long[0, long.MaxValue], Gen.Bool, Gen.Byte.Array[32]);
        gen.Sample((key, v4, v6bytes, revision, add, hash) =>
        {
            var ipv4 = new IPAddress(v4);
            var ipv6 = new IPAddress(v6bytes);
            string text = Write(w => w.Change(add, revision, key, ipv4.ToString(), ipv6.ToString(), hash));
            var line = PeerLine.Parse(Encoding.ASCII.GetBytes(text.TrimEnd('\n')));
            Assert.Equal(add ? PeerLineType.Add : PeerLineType.Remove, line.Type);
            Assert.Equal(revision, line.Revision);
            Assert.True(line.HasPeer);
            Assert.Equal(key, line.PublicKey.Bytes.ToArray());
            Assert.Equal(ipv4, line.Ipv4);
            Assert.Equal(ipv6, line.Ipv6);
            Assert.Equal(hash, line.Hash);
        }, iter: 2000);
    }

    [Fact]
    public void The_reader_refuses_any_bytes_with_its_own_exception_only()
    {
        Gen.Byte.Array[0, 300].Sample(bytes =>
        {
            try { PeerLine.Parse(bytes); }
            catch (PeerStreamException) { }
        }, iter: 20000);
        // Mutations of a valid line reach deeper into the parser than random bytes.
        byte[] valid = Encoding.ASCII.GetBytes(Write(w => w.Change(true, 5, KeyBytes, "10.64.0.2", "fc00::2", Hash)).TrimEnd('\n'));
        Gen.Select(Gen.Int[0, valid.Length - 1], Gen.Byte).Array[1, 4].Sample(edits =>
        {
            byte[] copy = (byte[])valid.Clone();
            foreach (var (at, value) in edits) copy[at] = value;
            try { PeerLine.Parse(copy); }
            catch (PeerStreamException) { }
        }, iter: 20000);
    }

    [Fact]
    public void Refuses_to_write_a_key_or_hash_of_the_wrong_size()
    {
        Assert.Throws<ArgumentException>(() => Write(w => w.Peer(new byte[31], "10.64.0.2", "fc00::2")));
        Assert.Throws<ArgumentException>(() => Write(w => w.SnapshotEnd(1, new byte[31])));
    }
}

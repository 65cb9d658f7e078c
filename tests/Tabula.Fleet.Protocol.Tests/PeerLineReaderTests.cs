using System.Text;
using Tabula.Fleet.Protocol;

namespace Tabula.Fleet.Protocol.Tests;

public sealed class PeerLineReaderTests
{
    /// <summary>Returns at most one byte per read, or blocks forever once its data is gone (a silent connection).</summary>
    sealed class TrickleStream(byte[] data, bool hangAtEnd) : Stream
    {
        int position;
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
        {
            if (position == data.Length)
            {
                if (hangAtEnd) await Task.Delay(Timeout.Infinite, ct);
                return 0;
            }
            buffer.Span[0] = data[position++];
            return 1;
        }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => data.Length;
        public override long Position { get => position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    static async Task<List<string>> ReadAll(PeerLineReader reader)
    {
        var lines = new List<string>();
        while (await reader.ReadLineAsync(CancellationToken.None) is { } line)
            lines.Add(Encoding.UTF8.GetString(line.Span));
        return lines;
    }

    [Fact]
    public async Task Reassembles_lines_that_arrive_a_byte_at_a_time()
    {
        var reader = new PeerLineReader(new TrickleStream("one\ntwo\n\nthree\n"u8.ToArray(), false), TimeSpan.FromSeconds(5));
        Assert.Equal(["one", "two", "", "three"], await ReadAll(reader));
    }

    [Fact]
    public async Task Many_lines_through_one_buffer()
    {
        string text = string.Concat(Enumerable.Range(0, 50_000).Select(i => $"line {i}\n"));
        var reader = new PeerLineReader(new MemoryStream(Encoding.ASCII.GetBytes(text)), TimeSpan.FromSeconds(5));
        var lines = await ReadAll(reader);
        Assert.Equal(50_000, lines.Count);
        Assert.Equal("line 49999", lines[^1]);
    }

    [Fact]
    public async Task A_line_without_newline_within_the_limit_is_refused()
    {
        var reader = new PeerLineReader(new MemoryStream(new byte[PeerLine.MaxBytes * 3]), TimeSpan.FromSeconds(5));
        Assert.Equal(PeerStreamError.LineTooLong, (await Assert.ThrowsAsync<PeerStreamException>(() => ReadAll(reader))).Reason);
    }

    [Fact]
    public async Task A_stream_that_ends_inside_a_line_is_truncated()
    {
        var reader = new PeerLineReader(new MemoryStream("ok\npart"u8.ToArray()), TimeSpan.FromSeconds(5));
        Assert.Equal(PeerStreamError.Truncated, (await Assert.ThrowsAsync<PeerStreamException>(() => ReadAll(reader))).Reason);
    }

    [Fact]
    public async Task A_silent_connection_is_declared_stalled()
    {
        var reader = new PeerLineReader(new TrickleStream("hello\n"u8.ToArray(), hangAtEnd: true), TimeSpan.FromMilliseconds(200));
        Assert.NotNull(await reader.ReadLineAsync(CancellationToken.None));
        Assert.Equal(PeerStreamError.Stalled, (await Assert.ThrowsAsync<PeerStreamException>(async () => await reader.ReadLineAsync(CancellationToken.None))).Reason);
    }
}

using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Tabula.Provisioning.Tests.Support;

namespace Tabula.Provisioning.Tests;

/// <summary>How archives travel: chunk boundaries, keep-alive, both HTTP versions, and TLS record sizes.</summary>
public sealed class StreamingTests
{
    // Not a multiple of the 64 KiB send chunk nor of the 16 KiB TLS record.
    const int ArchiveSize = 1_000_003;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Archive_bytes_survive_chunking_ranges_and_head_on_one_keep_alive_connection(int httpMajor)
    {
        await using var server = await TestServer.StartAsync();
        var package = server.Packages.Create(trustedSigners: 2, size: ArchiveSize);
        (await server.PublishAsync(package)).Dispose();
        using var client = server.Client();
        var version = new Version(httpMajor, httpMajor == 1 ? 1 : 0);
        client.DefaultRequestVersion = version;
        client.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        string url = $"/ospkg/{package.ArchiveSha256}.zip";
        HttpRequestMessage Request(HttpMethod method) =>
            new(method, url) { Version = version, VersionPolicy = HttpVersionPolicy.RequestVersionExact };

        // HEAD first: a body sent after it would corrupt the next response on the same connection.
        using (var head = await client.SendAsync(Request(HttpMethod.Head)))
        {
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
            Assert.Equal(package.Archive.Length, head.Content.Headers.ContentLength);
            Assert.Equal(httpMajor, head.Version.Major);
        }

        Assert.Equal(package.Archive, await client.GetByteArrayAsync(url));

        foreach (var (from, to) in new[] { (65_000L, 300_000L), (0L, 65_535L), (65_536L, 65_536L), (999_000L, 1_000_002L) })
        {
            using var ranged = Request(HttpMethod.Get);
            ranged.Headers.Range = new RangeHeaderValue(from, to);
            using var partial = await client.SendAsync(ranged);
            Assert.Equal(HttpStatusCode.PartialContent, partial.StatusCode);
            Assert.Equal(httpMajor, partial.Version.Major);
            Assert.Equal(to - from + 1, partial.Content.Headers.ContentLength);
            Assert.Equal(package.Archive[(int)from..(int)(to + 1)], await partial.Content.ReadAsByteArrayAsync());
        }

        Assert.Equal(package.Archive, await client.GetByteArrayAsync("/channels/stable.zip"));
    }

    /// <summary>Responses must travel in full 16 KiB TLS records, as nginx sends them: the SslStream path once sent
    /// 4 KiB records (one per Kestrel pool block, 4× the per-record work; docs/provisioning.md, Benchmark). This
    /// reads the raw TLS stream under the client.</summary>
    [Fact]
    public async Task Archive_travels_in_full_size_tls_records()
    {
        await using var server = await TestServer.StartAsync();
        var package = server.Packages.Create(trustedSigners: 2, size: ArchiveSize);
        (await server.PublishAsync(package)).Dispose();

        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.BaseAddress.Host, server.BaseAddress.Port);
        var recorder = new RecordingStream(tcp.GetStream());
        await using var tls = new SslStream(recorder, leaveInnerStreamOpen: false, (_, _, _, _) => true);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ApplicationProtocols = [SslApplicationProtocol.Http11],
        });
        await tls.WriteAsync(Encoding.ASCII.GetBytes(
            $"GET /ospkg/{package.ArchiveSha256}.zip HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
        long plaintext = 0;
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await tls.ReadAsync(buffer)) > 0)
            plaintext += n;
        Assert.True(plaintext > ArchiveSize, $"got {plaintext} bytes; raw records {string.Join(",", recorder.ApplicationDataRecordLengths().Take(20))}");

        var sizes = recorder.ApplicationDataRecordLengths();
        long inFullRecords = sizes.Where(s => s >= 16 * 1024).Sum(s => (long)s);
        Assert.True(inFullRecords >= ArchiveSize * 9L / 10,
            $"only {inFullRecords} of {sizes.Sum(s => (long)s)} bytes in records of 16 KiB; largest record {sizes.Max()}");
    }

    /// <summary>Keeps every byte read from the socket, to parse the TLS record framing afterwards.</summary>
    sealed class RecordingStream(Stream inner) : Stream
    {
        readonly MemoryStream received = new();

        public List<int> ApplicationDataRecordLengths()
        {
            var bytes = received.ToArray();
            var lengths = new List<int>();
            for (int at = 0; at + 5 <= bytes.Length;)
            {
                int length = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(at + 3));
                if (bytes[at] == 23) // application_data (TLS 1.3 hides the inner type; handshake records are small)
                    lengths.Add(length);
                at += 5 + length;
            }
            return lengths;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            int n = await inner.ReadAsync(buffer, cancellationToken);
            received.Write(buffer.Span[..n]);
            return n;
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = inner.Read(buffer, offset, count);
            received.Write(buffer, offset, n);
            return n;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.WriteAsync(buffer, cancellationToken);

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public override void Flush() => inner.Flush();
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                inner.Dispose();
            base.Dispose(disposing);
        }
    }
}

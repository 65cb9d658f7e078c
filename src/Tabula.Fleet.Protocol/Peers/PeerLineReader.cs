namespace Tabula.Fleet.Protocol;

/// <summary>
/// Reads the peer stream: newline-delimited lines of at most <see cref="PeerLine.MaxBytes"/> through one 64 KiB buffer
/// (a snapshot of a million peers streams through the same memory). A line that does not arrive within
/// <paramref name="idle"/> (the controller heartbeats every 15 s) means the connection is dead. Every failure is a
/// <see cref="PeerStreamException"/>; I/O errors of <paramref name="stream"/> pass through.
/// </summary>
public sealed class PeerLineReader(Stream stream, TimeSpan idle)
{
    const int BufferSize = 64 * 1024;
    readonly byte[] buffer = new byte[BufferSize];
    int start, end;

    /// <summary>The next line, parsed; null at the end of the stream.</summary>
    public async ValueTask<PeerLine?> ReadAsync(CancellationToken ct) =>
        await ReadLineAsync(ct) is { } line ? PeerLine.Parse(line.Span) : null;

    /// <summary>The next line without its newline, valid until the next call; null at the end of the stream.</summary>
    public async ValueTask<ReadOnlyMemory<byte>?> ReadLineAsync(CancellationToken ct)
    {
        while (true)
        {
            int newline = buffer.AsSpan(start, end - start).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                var line = buffer.AsMemory(start, newline);
                start += newline + 1;
                return line;
            }
            if (end - start > PeerLine.MaxBytes)
                throw new PeerStreamException(PeerStreamError.LineTooLong, $"no newline within {PeerLine.MaxBytes} bytes");
            if (start > 0)
            {
                buffer.AsSpan(start, end - start).CopyTo(buffer);
                end -= start;
                start = 0;
            }
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(idle);
            int n;
            try
            {
                n = await stream.ReadAsync(buffer.AsMemory(end), timeout.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new PeerStreamException(PeerStreamError.Stalled, $"nothing from the controller for {idle.TotalSeconds:0}s");
            }
            if (n == 0)
            {
                if (end > start) throw new PeerStreamException(PeerStreamError.Truncated, "the stream ended inside a line");
                return null;
            }
            end += n;
        }
    }
}

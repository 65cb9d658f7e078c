namespace Tabula.WireGuard.Uapi;

/// <summary>
/// Reads '\n'-terminated lines from a UAPI socket through one fixed buffer. A line longer than
/// <see cref="Limits.UapiMaxLineBytes"/> or a connection that ends inside a line is a
/// <see cref="WireGuardProtocolException"/>. The current line is valid until the next read.
/// </summary>
internal sealed class UapiLineReader(Stream stream, byte[] buffer)
{
    int start, end, lineStart, lineLength;

    /// <summary>The line last read, without its '\n'.</summary>
    public ReadOnlySpan<byte> Line => buffer.AsSpan(lineStart, lineLength);

    /// <summary>1-based number of the line last read (for error detail).</summary>
    public long LineNumber { get; private set; }

    /// <summary>Reads the next line; false at a clean end of stream (no partial line pending).</summary>
    public async ValueTask<bool> ReadLineAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            int newline = buffer.AsSpan(start, end - start).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                if (newline > Limits.UapiMaxLineBytes)
                    WireGuardProtocolException.Throw(ProtocolError.LineTooLong, $"line {LineNumber + 1}");
                lineStart = start;
                lineLength = newline;
                start += newline + 1;
                LineNumber++;
                return true;
            }
            if (end - start > Limits.UapiMaxLineBytes)
                WireGuardProtocolException.Throw(ProtocolError.LineTooLong, $"line {LineNumber + 1}");
            if (end == buffer.Length)
            {
                Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                end -= start;
                start = 0;
            }
            int read = await stream.ReadAsync(buffer.AsMemory(end), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                if (end > start)
                    WireGuardProtocolException.Throw(ProtocolError.Truncated, $"inside line {LineNumber + 1}");
                return false;
            }
            end += read;
        }
    }
}

namespace Tabula.Relay.Dns;

/// <summary>
/// Domain names in wire form (RFC 1035 §3.1, §4.1.4). Compression pointers must point strictly before the start of the
/// run of labels that contains them, so every jump goes to a lower offset and the walk ends; with the 255-byte limit on
/// the expanded name that bounds the work on any input. They must also point past the header, where no name can be.
/// </summary>
internal static class DnsName
{
    /// <summary>
    /// Reads the name at <paramref name="offset"/> and returns the offset just after it in the message (after the first
    /// pointer when compressed). Writes the expanded wire form, case kept, into <paramref name="expanded"/> when it is
    /// not empty (it must then hold <see cref="DnsLimits.MaxNameBytes"/>). <paramref name="compressed"/> says whether a
    /// pointer was followed.
    /// </summary>
    public static int Read(ReadOnlySpan<byte> message, int offset, Span<byte> expanded, out int length, out bool compressed)
    {
        int position = offset;
        int runStart = offset;       // start of the current run of labels: pointers must go below it
        int end = -1;                // offset after the name in the message, fixed at the first pointer
        int limit = message.Length;  // after a jump, labels must end before the pointer that jumped: a prior occurrence
        length = 0;
        compressed = false;
        while (true)
        {
            if (position >= message.Length)
                DnsFormatException.Throw(DnsFormatError.Truncated, position);
            byte b = message[position];
            switch (b & 0xC0)
            {
                case 0x00:
                    if (length + 1 + b > DnsLimits.MaxNameBytes)
                        DnsFormatException.Throw(DnsFormatError.NameTooLong, position);
                    if (position + 1 + b > message.Length)
                        DnsFormatException.Throw(DnsFormatError.Truncated, position);
                    // A pointer names an earlier name; labels that run over the pointer itself decode as other bytes once
                    // the forwarder rewrites what follows for the client (found by afl in CI).
                    if (position + 1 + b > limit)
                        DnsFormatException.Throw(DnsFormatError.BadPointer, position);
                    if (!expanded.IsEmpty)
                        message.Slice(position, 1 + b).CopyTo(expanded[length..]);
                    length += 1 + b;
                    position += 1 + b;
                    if (b == 0)
                        return end < 0 ? position : end;
                    break;
                case 0xC0:
                    if (position + 1 >= message.Length)
                        DnsFormatException.Throw(DnsFormatError.Truncated, position);
                    int target = ((b & 0x3F) << 8) | message[position + 1];
                    // No name lives in the 12-byte header, so a pointer into it is malformed; kept, it would decode
                    // as other bytes once the forwarder rewrites the header for the client (found by afl).
                    if (target >= runStart || target < DnsLimits.HeaderBytes)
                        DnsFormatException.Throw(DnsFormatError.BadPointer, position);
                    if (end < 0)
                        end = position + 2;
                    compressed = true;
                    limit = position;
                    position = runStart = target;
                    break;
                default:
                    DnsFormatException.Throw(DnsFormatError.BadLabel, position);
                    break;
            }
        }
    }

    /// <summary>Skips the name at <paramref name="offset"/>, checking it as <see cref="Read"/> does.</summary>
    public static int Skip(ReadOnlySpan<byte> message, int offset) => Read(message, offset, default, out _, out _);

    /// <summary>ASCII case-insensitive equality of two expanded names (RFC 4343).</summary>
    public static bool EqualsIgnoreCase(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        if (a.Length != b.Length)
            return false;
        for (int i = 0; i < a.Length; i++)
            if (Lower(a[i]) != Lower(b[i]))
                return false;
        return true;
    }

    /// <summary>Lower-cases ASCII letters in place (label length octets are below 'A' and stay as they are).</summary>
    public static void ToLower(Span<byte> name)
    {
        for (int i = 0; i < name.Length; i++)
            name[i] = Lower(name[i]);
    }

    static byte Lower(byte b) => b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b | 0x20) : b;
}

using System.Buffers.Binary;

namespace Tabula.Tpm;

/// <summary>
/// Reads TPM 2.0 marshaled structures (big-endian, TPM2B = 2-byte size then bytes) from a span. Every read checks
/// the bytes are there and throws <see cref="TpmFormatException"/> naming the field otherwise; nothing allocates
/// more than the input holds.
/// </summary>
public ref struct TpmReader(ReadOnlySpan<byte> data)
{
    readonly ReadOnlySpan<byte> data = data;
    int position;

    /// <summary>Bytes not read yet.</summary>
    public readonly int Remaining => data.Length - position;

    /// <summary>Bytes read so far.</summary>
    public readonly int Position => position;

    /// <summary>Reads a UINT8 (or BYTE, TPMA_SESSION, TPMI_YES_NO).</summary>
    public byte ReadByte(string what) => Take(1, what)[0];

    /// <summary>Reads a UINT16 (TPM_ALG_ID, TPM_ST, a TPM2B size).</summary>
    public ushort ReadUInt16(string what) => BinaryPrimitives.ReadUInt16BigEndian(Take(2, what));

    /// <summary>Reads a UINT32 (TPM_HANDLE, TPM_RC, a count).</summary>
    public uint ReadUInt32(string what) => BinaryPrimitives.ReadUInt32BigEndian(Take(4, what));

    /// <summary>Reads a UINT64 (a clock, a firmware version).</summary>
    public ulong ReadUInt64(string what) => BinaryPrimitives.ReadUInt64BigEndian(Take(8, what));

    /// <summary>Reads <paramref name="count"/> bytes, as a view into the input.</summary>
    public ReadOnlySpan<byte> ReadBytes(int count, string what)
    {
        if (count < 0)
            TpmFormatException.Throw(TpmFormatError.InvalidValue, what);
        return Take(count, what);
    }

    /// <summary>Reads a TPM2B of at most <paramref name="maxSize"/> bytes (the field's own bound), as a view.</summary>
    public ReadOnlySpan<byte> ReadTpm2B(int maxSize, string what)
    {
        int size = ReadUInt16(what + ".size");
        if (size > maxSize)
            TpmFormatException.Throw(TpmFormatError.TooLarge, what + ".size");
        return Take(size, what);
    }

    /// <summary>
    /// Reads a TPM2B that wraps a structure (TPM2B_PUBLIC, TPM2B_ATTEST…): returns a reader over just its bytes.
    /// The caller reads the structure and calls <see cref="ExpectEnd"/> on that reader.
    /// </summary>
    public TpmReader ReadSized(int maxSize, string what) => new(ReadTpm2B(maxSize, what));

    /// <summary>Reads a count and checks it against <paramref name="max"/> and against the bytes left.</summary>
    public int ReadCount(int max, int minBytesPerItem, string what)
    {
        uint count = ReadUInt32(what);
        if (count > (uint)max)
            TpmFormatException.Throw(TpmFormatError.TooLarge, what);
        if ((long)count * minBytesPerItem > Remaining)
            TpmFormatException.Throw(TpmFormatError.Truncated, what);
        return (int)count;
    }

    /// <summary>Throws <see cref="TpmFormatError.TrailingBytes"/> unless everything was read.</summary>
    public readonly void ExpectEnd(string what)
    {
        if (position != data.Length)
            TpmFormatException.Throw(TpmFormatError.TrailingBytes, what);
    }

    ReadOnlySpan<byte> Take(int count, string what)
    {
        if (count > data.Length - position)
            TpmFormatException.Throw(TpmFormatError.Truncated, what);
        var slice = data.Slice(position, count);
        position += count;
        return slice;
    }
}

using System.Buffers.Binary;

namespace Tabula.Tpm;

/// <summary>
/// Writes TPM 2.0 marshaled structures (big-endian) into a caller's buffer. Running out of room throws
/// <see cref="TpmFormatError.CommandTooLarge"/>: commands are bounded by <see cref="TpmLimits.MaxMessageBytes"/>.
/// </summary>
public ref struct TpmWriter(Span<byte> buffer)
{
    readonly Span<byte> buffer = buffer;
    int position;

    /// <summary>Bytes written so far.</summary>
    public readonly int Position => position;

    /// <summary>What was written.</summary>
    public readonly ReadOnlySpan<byte> Written => buffer[..position];

    /// <summary>Writes a UINT8.</summary>
    public void WriteByte(byte value) => Take(1)[0] = value;

    /// <summary>Writes a UINT16.</summary>
    public void WriteUInt16(ushort value) => BinaryPrimitives.WriteUInt16BigEndian(Take(2), value);

    /// <summary>Writes a UINT32.</summary>
    public void WriteUInt32(uint value) => BinaryPrimitives.WriteUInt32BigEndian(Take(4), value);

    /// <summary>Writes a UINT64.</summary>
    public void WriteUInt64(ulong value) => BinaryPrimitives.WriteUInt64BigEndian(Take(8), value);

    /// <summary>Writes bytes as they are.</summary>
    public void WriteBytes(scoped ReadOnlySpan<byte> value) => value.CopyTo(Take(value.Length));

    /// <summary>Writes a TPM2B: the 2-byte size, then the bytes.</summary>
    public void WriteTpm2B(scoped ReadOnlySpan<byte> value)
    {
        if (value.Length > ushort.MaxValue)
            TpmFormatException.Throw(TpmFormatError.CommandTooLarge, "TPM2B.size");
        WriteUInt16((ushort)value.Length);
        WriteBytes(value);
    }

    /// <summary>Reserves a 2-byte size for a TPM2B that wraps a structure; finish it with <see cref="EndSized16"/>.</summary>
    public int BeginSized16()
    {
        WriteUInt16(0);
        return position;
    }

    /// <summary>Fills in the size reserved by <see cref="BeginSized16"/>.</summary>
    public readonly void EndSized16(int start) =>
        BinaryPrimitives.WriteUInt16BigEndian(buffer.Slice(start - 2, 2), checked((ushort)(position - start)));

    /// <summary>Reserves a 4-byte size (a command's authorizationSize); finish it with <see cref="EndSized32"/>.</summary>
    public int BeginSized32()
    {
        WriteUInt32(0);
        return position;
    }

    /// <summary>Fills in the size reserved by <see cref="BeginSized32"/>.</summary>
    public readonly void EndSized32(int start) =>
        BinaryPrimitives.WriteUInt32BigEndian(buffer.Slice(start - 4, 4), (uint)(position - start));

    /// <summary>Overwrites a UINT32 already written at <paramref name="offset"/> (a header's size).</summary>
    public readonly void PatchUInt32(int offset, uint value) => BinaryPrimitives.WriteUInt32BigEndian(buffer.Slice(offset, 4), value);

    Span<byte> Take(int count)
    {
        if (count > buffer.Length - position)
            TpmFormatException.Throw(TpmFormatError.CommandTooLarge, "command");
        var slice = buffer.Slice(position, count);
        position += count;
        return slice;
    }
}

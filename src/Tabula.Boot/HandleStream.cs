using Microsoft.Win32.SafeHandles;

namespace Tabula.Boot;

/// <summary>
/// A seekable stream over a file descriptor it does not own (FileStream would close it): reads and writes go
/// through <see cref="RandomAccess"/> at the stream's own position. Used for the memfds that hold the archive,
/// the kernel and the initramfs, whose handles live exactly as long as the state that made them.
/// </summary>
internal sealed class HandleStream(SafeFileHandle handle) : Stream
{
    long position;

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => true;
    public override long Length => RandomAccess.GetLength(handle);

    public override long Position
    {
        get => position;
        set => position = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value));
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = RandomAccess.Read(handle, buffer, position);
        position += n;
        return n;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        RandomAccess.Write(handle, buffer, position);
        position += buffer.Length;
    }

    public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
    {
        SeekOrigin.Begin => offset,
        SeekOrigin.Current => position + offset,
        SeekOrigin.End => Length + offset,
        _ => throw new ArgumentOutOfRangeException(nameof(origin)),
    };

    public override void SetLength(long value) => RandomAccess.SetLength(handle, value);

    public override void Flush() { }
}

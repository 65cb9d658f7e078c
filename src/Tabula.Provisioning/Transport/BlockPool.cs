using System.Buffers;
using System.Collections.Concurrent;

namespace Tabula.Provisioning.Transport;

/// <summary>
/// Recycled 64 KiB blocks for the response side of TLS connections: a file chunk is read into a block and
/// encrypted from it, and the block goes back for the next chunk. Blocks live on the pinned object heap, so the
/// GC never moves them and their pages stay mapped: with freshly allocated buffers, a profile of 50 parallel
/// downloads spent a quarter of the server's time in page faults under <c>pread</c> and in gen0 compaction.
/// </summary>
internal sealed class BlockPool(int maxRetained) : MemoryPool<byte>
{
    /// <summary>One file chunk (Http/FileBody.cs): four full TLS records.</summary>
    public const int BlockBytes = 64 * 1024;

    readonly ConcurrentQueue<byte[]> _free = new();
    int _retained;

    public override int MaxBufferSize => BlockBytes;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, BlockBytes);
        if (_free.TryDequeue(out var block))
            Interlocked.Decrement(ref _retained);
        else
            block = GC.AllocateUninitializedArray<byte>(BlockBytes, pinned: true);
        return new Lease(this, block);
    }

    void Return(byte[] block)
    {
        // Above the cap (a burst of connections), let the GC have the block.
        if (Interlocked.Increment(ref _retained) <= maxRetained)
            _free.Enqueue(block);
        else
            Interlocked.Decrement(ref _retained);
    }

    protected override void Dispose(bool disposing)
    {
    }

    sealed class Lease(BlockPool pool, byte[] block) : IMemoryOwner<byte>
    {
        byte[]? _block = block;

        public Memory<byte> Memory => _block ?? throw new ObjectDisposedException(nameof(Lease));

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _block, null) is { } b)
                pool.Return(b);
        }
    }
}

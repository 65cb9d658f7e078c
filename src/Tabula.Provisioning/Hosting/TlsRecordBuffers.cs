using System.Buffers;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Tabula.Provisioning.Hosting;

/// <summary>
/// Makes Kestrel hand <see cref="System.Net.Security.SslStream"/> full-size TLS records.
/// </summary>
/// <remarks>
/// Kestrel's HTTPS middleware writes the response through a stream pipe writer whose segments come from the
/// connection's memory pool, and writes each segment to the <c>SslStream</c> separately. Kestrel's pool hands out
/// 4 KiB blocks, so every TLS record carried 4 KiB of plaintext (seen with strace: records of 4113 bytes) where
/// nginx sends 16 KiB records: four times the per-record work (OpenSSL calls, SslStream bookkeeping, pipe copies).
/// <see cref="Before"/>, placed before <c>UseHttps</c>, gives the HTTPS middleware a pool of
/// <see cref="BlockBytes"/> blocks for its reader and writer; <see cref="After"/>, placed after it, restores the
/// connection's own pool so that everything else in Kestrel is unchanged.
/// </remarks>
public static class TlsRecordBuffers
{
    /// <summary>Smallest block handed out: the largest TLS record plaintext (RFC 8446 §5.1).</summary>
    public const int BlockBytes = 16 * 1024;

    static readonly LargeBlockPool Pool = new();

    /// <summary>Connection middleware for before <c>UseHttps</c>.</summary>
    public static ConnectionDelegate Before(ConnectionDelegate next) => context =>
    {
        context.Features.Set<IMemoryPoolFeature>(new Swapped(Pool, context.Features.Get<IMemoryPoolFeature>()));
        return next(context);
    };

    /// <summary>Connection middleware for after <c>UseHttps</c>.</summary>
    public static ConnectionDelegate After(ConnectionDelegate next) => context =>
    {
        if (context.Features.Get<IMemoryPoolFeature>() is Swapped swapped)
            context.Features.Set(swapped.Original);
        return next(context);
    };

    sealed class Swapped(MemoryPool<byte> pool, IMemoryPoolFeature? original) : IMemoryPoolFeature
    {
        public MemoryPool<byte> MemoryPool => pool;
        public IMemoryPoolFeature? Original => original;
    }

    /// <summary>Blocks of at least <see cref="BlockBytes"/> from the shared array pool (no pinning needed: the
    /// blocks only travel between the HTTP layer and <c>SslStream</c>, never to a socket).</summary>
    sealed class LargeBlockPool : MemoryPool<byte>
    {
        public override int MaxBufferSize => 1024 * 1024;

        public override IMemoryOwner<byte> Rent(int minBufferSize = -1) =>
            new Block(ArrayPool<byte>.Shared.Rent(Math.Max(minBufferSize, BlockBytes)));

        protected override void Dispose(bool disposing)
        {
        }
    }

    sealed class Block(byte[] array) : IMemoryOwner<byte>
    {
        byte[]? _array = array;

        public Memory<byte> Memory => _array ?? throw new ObjectDisposedException(nameof(Block));

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _array, null) is { } a)
                ArrayPool<byte>.Shared.Return(a);
        }
    }
}

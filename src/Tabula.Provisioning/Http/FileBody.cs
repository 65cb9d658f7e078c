using System.IO.Pipelines;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Tabula.Provisioning.Http;

/// <summary>
/// Sends stored files in large chunks read straight into the response pipe. Installed by the file endpoints in
/// place of Kestrel's send-file fallback, which copies through a 16 KiB buffer (one read on the thread pool, one
/// copy into the pipe and one flush per 16 KiB). Everything else (status, headers, ETag, Range, HEAD) stays with
/// the file result that calls <see cref="SendFileAsync"/>.
/// </summary>
sealed class FileBody(IHttpResponseBodyFeature inner) : IHttpResponseBodyFeature
{
    /// <summary>Bytes read and flushed at a time: four full TLS records.</summary>
    const int ChunkBytes = 64 * 1024;

    public Stream Stream => inner.Stream;
    public PipeWriter Writer => inner.Writer;
    public void DisableBuffering() => inner.DisableBuffering();
    public Task StartAsync(CancellationToken cancellationToken = default) => inner.StartAsync(cancellationToken);
    public Task CompleteAsync() => inner.CompleteAsync();

    public async Task SendFileAsync(string path, long offset, long? count, CancellationToken cancellationToken = default)
    {
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
        long length = RandomAccess.GetLength(file);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(offset, length);
        long remaining = count ?? length - offset;
        ArgumentOutOfRangeException.ThrowIfNegative(remaining, nameof(count));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(remaining, length - offset, nameof(count));
        cancellationToken.ThrowIfCancellationRequested();

        await inner.StartAsync(cancellationToken);
        var writer = inner.Writer;
        while (remaining > 0)
        {
            var buffer = writer.GetMemory(ChunkBytes);
            int want = (int)Math.Min(Math.Min(buffer.Length, ChunkBytes), remaining);
            // A synchronous read: the objects are hot in the page cache, and an asynchronous one costs a thread-pool
            // hop per chunk on Linux.
            int read = RandomAccess.Read(file, buffer.Span[..want], offset);
            if (read == 0)
                throw new IOException($"{path} is shorter than its length at open");
            writer.Advance(read);
            offset += read;
            remaining -= read;
            var flushed = await writer.FlushAsync(cancellationToken);
            if (flushed.IsCanceled)
                throw new OperationCanceledException(cancellationToken);
            if (flushed.IsCompleted)
                return;
        }
    }
}

using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;

namespace Tabula.Packaging;

/// <summary>
/// Writes the OS package archive the way stmgr lays it out (entries boot/, boot/KERNEL,
/// boot/INITRAMFS, manifest.json; Deflate; data descriptors), deterministically: fixed 1980-01-01
/// timestamps, fixed modes, fixed order, no extra fields. The same inputs give the same bytes
/// on any machine running the same .NET (whose bundled zlib-ng fixes the Deflate output).
/// Streams the inputs: memory use does not grow with the kernel or initramfs size.
/// </summary>
public static class OsPackageArchiveWriter
{
    private const ushort DosDate1980 = (0 << 9) | (1 << 5) | 1; // 1980-01-01
    private const ushort VersionNeeded = 20;                     // 2.0: Deflate, directories
    private const ushort VersionMadeBy = (3 << 8) | 20;          // Unix, 2.0 (so modes below are read)
    private const ushort FlagDataDescriptor = 0x0008;
    private const ushort FlagUtf8 = 0x0800;

    /// <summary>The inputs of an OS package archive.</summary>
    /// <param name="Kernel">Kernel image, read to its end.</param>
    /// <param name="KernelName">File name stored under boot/ (no directories).</param>
    /// <param name="Initramfs">Initramfs, read to its end.</param>
    /// <param name="InitramfsName">File name stored under boot/.</param>
    /// <param name="Label">Manifest label.</param>
    /// <param name="Cmdline">Kernel command line.</param>
    /// <param name="Release">The manifest's release (<see cref="Manifest.Release"/>), 0 for none.</param>
    /// <param name="MachineClass">The manifest's machine class (<see cref="Manifest.MachineClass"/>), null for none.</param>
    public sealed record Inputs(Stream Kernel, string KernelName, Stream Initramfs, string InitramfsName, string Label, string Cmdline,
        long Release = 0, string? MachineClass = null);

    /// <summary>Writes the archive to <paramref name="output"/> and returns the manifest it contains.</summary>
    public static Manifest Write(Stream output, Inputs inputs)
    {
        ValidateFileName(inputs.KernelName, "kernel");
        ValidateFileName(inputs.InitramfsName, "initramfs");
        if (inputs.KernelName == inputs.InitramfsName)
            throw new ArgumentException("the kernel and the initramfs need different file names");
        var manifest = new Manifest(inputs.Label, "boot/" + inputs.KernelName, "boot/" + inputs.InitramfsName, inputs.Cmdline)
        {
            Release = inputs.Release,
            MachineClass = inputs.MachineClass,
        };
        // Round-trip through the parser so we never write a manifest we would refuse to read.
        Manifest.Parse(manifest.ToJson());

        var zip = new ZipStreamWriter(output);
        zip.AddDirectory("boot/");
        zip.AddFile(manifest.KernelPath, inputs.Kernel);
        zip.AddFile(manifest.InitramfsPath, inputs.Initramfs);
        using (var json = new MemoryStream(manifest.ToJson())) zip.AddFile("manifest.json", json);
        zip.Finish();
        return manifest;
    }

    private static void ValidateFileName(string name, string what)
    {
        if (name.Length == 0 || name.Contains('/') || name.Contains('\\') || name is "." or ".." || name.Contains('\0'))
            throw new ArgumentException($"the {what} file name \"{name}\" must be a plain file name");
    }

    /// <summary>A minimal forward-only zip writer (PKWARE APPNOTE 6.3: local headers, data descriptors, central directory).</summary>
    private sealed class ZipStreamWriter(Stream output)
    {
        private readonly record struct Entry(byte[] Name, ushort Method, uint Crc, uint CompressedSize, uint Size, uint Offset, bool IsDirectory);
        private readonly List<Entry> entries = [];
        private long position;

        public void AddDirectory(string name)
        {
            byte[] encoded = Encoding.UTF8.GetBytes(name);
            uint offset = CheckedOffset();
            WriteLocalHeader(encoded, method: 0, flags: 0, crc: 0, compressed: 0, size: 0);
            entries.Add(new Entry(encoded, 0, 0, 0, 0, offset, IsDirectory: true));
        }

        public void AddFile(string name, Stream content)
        {
            byte[] encoded = Encoding.UTF8.GetBytes(name);
            uint offset = CheckedOffset();
            ushort flags = (ushort)(FlagDataDescriptor | (IsAscii(encoded) ? 0 : FlagUtf8));
            WriteLocalHeader(encoded, method: 8, flags, crc: 0, compressed: 0, size: 0);

            var crc = new Crc32();
            long size = 0;
            var counter = new CountingStream(output);
            byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
            try
            {
                using (var deflate = new DeflateStream(counter, CompressionLevel.Optimal, leaveOpen: true))
                {
                    int read;
                    while ((read = content.Read(buffer)) > 0)
                    {
                        crc.Append(buffer.AsSpan(0, read));
                        deflate.Write(buffer, 0, read);
                        size += read;
                        if (size > Limits.MaxEntryBytes)
                            throw new InvalidOperationException($"{name} is larger than the {Limits.MaxEntryBytes}-byte entry limit");
                    }
                }
            }
            finally { ArrayPool<byte>.Shared.Return(buffer); }
            position += counter.Written;
            uint crcValue = crc.GetCurrentHashAsUInt32();
            uint compressed = checked((uint)counter.Written);

            Span<byte> descriptor = stackalloc byte[16];
            BinaryPrimitives.WriteUInt32LittleEndian(descriptor, 0x08074b50);
            BinaryPrimitives.WriteUInt32LittleEndian(descriptor[4..], crcValue);
            BinaryPrimitives.WriteUInt32LittleEndian(descriptor[8..], compressed);
            BinaryPrimitives.WriteUInt32LittleEndian(descriptor[12..], checked((uint)size));
            Write(descriptor);
            entries.Add(new Entry(encoded, 8, crcValue, compressed, (uint)size, offset, IsDirectory: false));
        }

        public void Finish()
        {
            uint directoryOffset = CheckedOffset();
            Span<byte> h = stackalloc byte[46];
            foreach (var e in entries)
            {
                h.Clear();
                BinaryPrimitives.WriteUInt32LittleEndian(h, 0x02014b50);
                BinaryPrimitives.WriteUInt16LittleEndian(h[4..], VersionMadeBy);
                BinaryPrimitives.WriteUInt16LittleEndian(h[6..], VersionNeeded);
                ushort flags = (ushort)((e.IsDirectory ? 0 : FlagDataDescriptor) | (IsAscii(e.Name) ? 0 : FlagUtf8));
                BinaryPrimitives.WriteUInt16LittleEndian(h[8..], flags);
                BinaryPrimitives.WriteUInt16LittleEndian(h[10..], e.Method);
                BinaryPrimitives.WriteUInt16LittleEndian(h[12..], 0);
                BinaryPrimitives.WriteUInt16LittleEndian(h[14..], DosDate1980);
                BinaryPrimitives.WriteUInt32LittleEndian(h[16..], e.Crc);
                BinaryPrimitives.WriteUInt32LittleEndian(h[20..], e.CompressedSize);
                BinaryPrimitives.WriteUInt32LittleEndian(h[24..], e.Size);
                BinaryPrimitives.WriteUInt16LittleEndian(h[28..], (ushort)e.Name.Length);
                // extra (30), comment (32), disk (34), internal attributes (36): zero
                uint mode = e.IsDirectory ? 0x41EDu /* drwxr-xr-x */ : 0x81A4u /* -rw-r--r-- */;
                BinaryPrimitives.WriteUInt32LittleEndian(h[38..], mode << 16);
                BinaryPrimitives.WriteUInt32LittleEndian(h[42..], e.Offset);
                Write(h);
                Write(e.Name);
            }
            uint directorySize = checked((uint)(position - directoryOffset));
            Span<byte> end = stackalloc byte[22];
            BinaryPrimitives.WriteUInt32LittleEndian(end, 0x06054b50);
            BinaryPrimitives.WriteUInt16LittleEndian(end[8..], (ushort)entries.Count);
            BinaryPrimitives.WriteUInt16LittleEndian(end[10..], (ushort)entries.Count);
            BinaryPrimitives.WriteUInt32LittleEndian(end[12..], directorySize);
            BinaryPrimitives.WriteUInt32LittleEndian(end[16..], directoryOffset);
            Write(end);
            output.Flush();
        }

        private void WriteLocalHeader(byte[] name, ushort method, ushort flags, uint crc, uint compressed, uint size)
        {
            Span<byte> h = stackalloc byte[30];
            BinaryPrimitives.WriteUInt32LittleEndian(h, 0x04034b50);
            BinaryPrimitives.WriteUInt16LittleEndian(h[4..], VersionNeeded);
            BinaryPrimitives.WriteUInt16LittleEndian(h[6..], flags);
            BinaryPrimitives.WriteUInt16LittleEndian(h[8..], method);
            BinaryPrimitives.WriteUInt16LittleEndian(h[10..], 0);
            BinaryPrimitives.WriteUInt16LittleEndian(h[12..], DosDate1980);
            BinaryPrimitives.WriteUInt32LittleEndian(h[14..], crc);
            BinaryPrimitives.WriteUInt32LittleEndian(h[18..], compressed);
            BinaryPrimitives.WriteUInt32LittleEndian(h[22..], size);
            BinaryPrimitives.WriteUInt16LittleEndian(h[26..], (ushort)name.Length);
            Write(h);
            Write(name);
        }

        private void Write(ReadOnlySpan<byte> bytes)
        {
            output.Write(bytes);
            position += bytes.Length;
        }

        private uint CheckedOffset() => position <= uint.MaxValue
            ? (uint)position
            : throw new InvalidOperationException("the archive exceeds 4 GiB; zip64 is not written");

        private static bool IsAscii(byte[] name) => Array.TrueForAll(name, b => b < 0x80);
    }

    /// <summary>Passes writes through and counts them (the compressed size of an entry).</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public long Written { get; private set; }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            Written += buffer.Length;
        }
    }
}

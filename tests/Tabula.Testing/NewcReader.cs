using System.Text;

namespace Tabula.Testing;

/// <summary>One entry of a newc archive as the kernel would see it.</summary>
public sealed record NewcEntry(string Name, uint Mode, uint DeviceMajor, uint DeviceMinor, byte[] Data);

/// <summary>A small, independent newc reader (the format's fields by offset), for checking what the writers wrote (the image
/// builders, stboot's hand-over archive).</summary>
public static class NewcReader
{
    /// <summary>Every entry up to TRAILER!!!, in archive order.</summary>
    public static IReadOnlyList<NewcEntry> Read(byte[] archive)
    {
        var entries = new List<NewcEntry>();
        int offset = 0;
        while (true)
        {
            string header = Encoding.ASCII.GetString(archive, offset, 110);
            Assert.Equal("070701", header[..6]);
            uint Field(int index) => Convert.ToUInt32(header.Substring(6 + index * 8, 8), 16);
            int size = (int)Field(6), nameSize = (int)Field(11);
            string name = Encoding.UTF8.GetString(archive, offset + 110, nameSize - 1);
            if (name == "TRAILER!!!")
                return entries;
            int data = Align(offset + 110 + nameSize);
            entries.Add(new NewcEntry(name, Field(1), Field(9), Field(10), archive[data..(data + size)]));
            offset = Align(data + size);
        }
        static int Align(int x) => (x + 3) & ~3;
    }

    /// <summary>Gunzips, then reads.</summary>
    public static IReadOnlyList<NewcEntry> ReadGzip(byte[] gzip)
    {
        using var input = new System.IO.Compression.GZipStream(new MemoryStream(gzip), System.IO.Compression.CompressionMode.Decompress);
        using var cpio = new MemoryStream();
        input.CopyTo(cpio);
        return Read(cpio.ToArray());
    }
}

using System.Buffers;
using System.Text.Json;
using Tabula.Images.Cpio;

namespace Tabula.Boot.Handover;

/// <summary>
/// What stboot hands to the next OS (ARCHITECTURE: "stboot hands host-specific data to the next OS as
/// /etc/tabula/handover.json"): a cpio archive appended after the verified initramfs, whose bytes stay untouched.
/// The kernel unpacks concatenated archives in order; an uncompressed newc member must start 4-byte aligned
/// (init/initramfs.c checks <c>this_header &amp; 3</c>), and zero bytes between members are skipped, so the signed
/// bytes are followed by 0-3 zero bytes, then this archive.
/// <code>
/// {
///   "version": 1,
///   "ospkg_sha256": "&lt;hex SHA-256 of the verified archive&gt;",
///   "ospkg_source": "network" | "initramfs",
///   "descriptor_url": "&lt;URL without userinfo&gt;" (network only),
///   "host_config_source": "/etc/host_configuration.json" | "efivar:STHostConfig",
///   "host_config": { … the host configuration JSON exactly as read … }
/// }
/// </code>
/// The file is mode 0600: a host configuration may carry Basic-auth credentials in its URLs.
/// </summary>
internal static class Handover
{
    public const string Path = "etc/tabula/handover.json";

    public static byte[] Json(string ospkgSha256, string source, string? descriptorUrl, string hostConfigSource, ReadOnlySpan<byte> hostConfigJson)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteNumber("version", 1);
            writer.WriteString("ospkg_sha256", ospkgSha256);
            writer.WriteString("ospkg_source", source);
            if (descriptorUrl is not null)
                writer.WriteString("descriptor_url", descriptorUrl);
            writer.WriteString("host_config_source", hostConfigSource);
            writer.WritePropertyName("host_config");
            using (var document = JsonDocument.Parse(hostConfigJson.ToArray()))
                document.RootElement.WriteTo(writer);
            writer.WriteEndObject();
        }
        buffer.Write("\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The archive holding <paramref name="json"/> at <see cref="Path"/> (with its directories), uncompressed.</summary>
    public static byte[] Archive(byte[] json) =>
        new CpioArchive()
            .AddDirectory("etc")
            .AddDirectory("etc/tabula")
            .AddFile(Path, json, UnixFileMode.UserRead | UnixFileMode.UserWrite)
            .ToArray();

    /// <summary>Appends padding to a 4-byte boundary and the archive to <paramref name="initramfs"/>, positioned at its end.</summary>
    public static long AppendTo(Stream initramfs, byte[] archive)
    {
        long length = initramfs.Length;
        initramfs.Position = length;
        int padding = (int)((4 - length % 4) % 4);
        Span<byte> zeros = stackalloc byte[4];
        zeros.Clear();
        initramfs.Write(zeros[..padding]);
        initramfs.Write(archive);
        return length + padding + archive.Length;
    }
}

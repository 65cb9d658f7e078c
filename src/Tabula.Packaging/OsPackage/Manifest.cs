using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Tabula.Packaging;

/// <summary>
/// manifest.json inside the archive: which entries are the kernel and the initramfs, and the
/// kernel command line. Unknown keys (2021 packages carry tboot/acms) are ignored.
/// </summary>
public sealed record Manifest(string Label, string KernelPath, string InitramfsPath, string Cmdline)
{
    /// <summary>Parses and validates manifest JSON: version 1, both paths non-empty, cmdline within limits.</summary>
    public static Manifest Parse(ReadOnlySpan<byte> json)
    {
        using var document = JsonFields.ParseObject(json, Limits.MaxManifestBytes, "manifest.json");
        var fields = new JsonFields(document.RootElement, "manifest.json");
        long version = fields.RequiredInteger("version");
        if (version != 1)
            PackageFormatException.Throw(FormatError.UnsupportedVersion, $"manifest.json: version {version} is not supported (only 1)");
        string kernel = fields.RequiredString("kernel");
        string initramfs = fields.RequiredString("initramfs");
        if (kernel.Length == 0) fields.Invalid("kernel", "must name the kernel entry");
        if (initramfs.Length == 0) fields.Invalid("initramfs", "must name the initramfs entry");
        string cmdline = fields.OptionalString("cmdline") ?? "";
        if (System.Text.Encoding.UTF8.GetByteCount(cmdline) > Limits.MaxCmdlineBytes)
            fields.Invalid("cmdline", $"is longer than {Limits.MaxCmdlineBytes} bytes (the kernel's limit)");
        if (cmdline.Contains('\0')) fields.Invalid("cmdline", "contains a NUL character");
        return new Manifest(fields.OptionalString("label") ?? "", kernel, initramfs, cmdline);
    }

    /// <summary>JSON as stmgr writes it (Go MarshalIndent, 2 spaces, this key order).</summary>
    public byte[] ToJson()
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteNumber("version", 1);
            writer.WriteString("label", Label);
            writer.WriteString("kernel", KernelPath);
            writer.WriteString("initramfs", InitramfsPath);
            writer.WriteString("cmdline", Cmdline);
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}

using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Tabula.Packaging;

/// <summary>
/// manifest.json inside the archive: which entries are the kernel and the initramfs, and the
/// kernel command line. Unknown keys (2021 packages carry tboot/acms) are ignored. Tabula packages may carry
/// <c>"tabula": {"release": N, "machine_class": "relay"}</c> (issue 16; ST tools ignore it): inside the signed archive,
/// so a release number cannot be changed without the signers.
/// </summary>
public sealed record Manifest(string Label, string KernelPath, string InitramfsPath, string Cmdline)
{
    /// <summary>The manifest key of the Tabula object.</summary>
    public const string TabulaKey = "tabula";

    /// <summary>The package's release (1 to 2^53, only goes up), or 0 when the manifest has none (ST and older packages).</summary>
    public long Release { get; init; }

    /// <summary>The package's machine class (1-64 characters of [a-z0-9-]), or null when it has none.</summary>
    public string? MachineClass { get; init; }

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
        long release = 0;
        string? machineClass = null;
        if (fields.Get(TabulaKey) is { } tabula)
        {
            if (tabula.ValueKind != JsonValueKind.Object)
                fields.Wrong<Manifest>(TabulaKey, "an object", tabula);
            var inner = new JsonFields(tabula, "manifest.json: tabula");
            release = inner.OptionalInteger("release") ?? 0;
            if (inner.IsPresent("release") && !Releases.IsValidRelease(release))
                inner.Invalid("release", $"must be 1-{Releases.MaxRelease}");
            machineClass = inner.OptionalString("machine_class");
            if (machineClass is not null && !Releases.IsValidMachineClass(machineClass))
                inner.Invalid("machine_class", $"must be 1-{Releases.MaxMachineClassLength} characters of [a-z0-9-]");
        }
        return new Manifest(fields.OptionalString("label") ?? "", kernel, initramfs, cmdline) { Release = release, MachineClass = machineClass };
    }

    /// <summary>
    /// JSON as stmgr writes it (Go MarshalIndent, 2 spaces, this key order), then the <c>tabula</c> object only when
    /// <see cref="Release"/> or <see cref="MachineClass"/> is set, so a manifest without them is byte-identical to stmgr's.
    /// Throws <see cref="ArgumentException"/> for a release or class <see cref="Parse"/> would refuse.
    /// </summary>
    public byte[] ToJson()
    {
        Releases.CheckReleaseOrNone(Release, nameof(Release));
        Releases.CheckClassOrNone(MachineClass, nameof(MachineClass));
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteNumber("version", 1);
            writer.WriteString("label", Label);
            writer.WriteString("kernel", KernelPath);
            writer.WriteString("initramfs", InitramfsPath);
            writer.WriteString("cmdline", Cmdline);
            if (Release != 0 || MachineClass is not null)
            {
                writer.WriteStartObject(TabulaKey);
                if (Release != 0) writer.WriteNumber("release", Release);
                if (MachineClass is not null) writer.WriteString("machine_class", MachineClass);
                writer.WriteEndObject();
            }
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}

using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Tabula.Packaging;

/// <summary>
/// The OS package descriptor (NAME.json): a detached signature container for the archive.
/// <c>Certificates[i]</c> (base64 of PEM) pairs with <c>Signatures[i]</c> (base64 of a 64-byte
/// Ed25519 signature or of an ASCII Sigsum proof). The descriptor itself is not signed.
/// </summary>
public sealed record Descriptor(string OsPackageUrl, IReadOnlyList<string> Certificates, IReadOnlyList<string> Signatures)
{
    /// <summary>The only descriptor version that exists.</summary>
    public const int CurrentVersion = 1;

    /// <summary>Number of (certificate, signature) entries.</summary>
    public int Count => Signatures.Count;

    /// <summary>An unsigned descriptor pointing at <paramref name="osPackageUrl"/>.</summary>
    public static Descriptor Unsigned(string osPackageUrl) => new(osPackageUrl, [], []);

    /// <summary>Parses descriptor JSON, enforcing version 1, parallel arrays and the limits.</summary>
    public static Descriptor Parse(ReadOnlySpan<byte> json)
    {
        using var document = JsonFields.ParseObject(json, Limits.MaxDescriptorBytes, "descriptor");
        var fields = new JsonFields(document.RootElement, "descriptor");
        long version = fields.RequiredInteger("version");
        if (version != CurrentVersion)
            PackageFormatException.Throw(FormatError.UnsupportedVersion, $"descriptor: version {version} is not supported (only 1)");
        string url = fields.OptionalString("os_pkg_url") ?? "";
        var certificates = fields.OptionalStringArray("certificates", Limits.MaxSignatures) ?? [];
        var signatures = fields.OptionalStringArray("signatures", Limits.MaxSignatures) ?? [];
        if (certificates.Count != signatures.Count)
            PackageFormatException.Throw(FormatError.MismatchedSignatures,
                $"descriptor: {certificates.Count} certificates but {signatures.Count} signatures (they must pair up)");
        return new Descriptor(url, certificates, signatures);
    }

    /// <summary>A copy with one more (certificate PEM, signature) entry.</summary>
    public Descriptor AddSignature(string certificatePem, ReadOnlySpan<byte> signature)
    {
        if (Count >= Limits.MaxSignatures)
            throw new InvalidOperationException($"a descriptor holds at most {Limits.MaxSignatures} signatures");
        return this with
        {
            Certificates = [.. Certificates, Convert.ToBase64String(Encoding.ASCII.GetBytes(certificatePem))],
            Signatures = [.. Signatures, Convert.ToBase64String(signature)],
        };
    }

    /// <summary>A copy pointing at another archive URL.</summary>
    public Descriptor WithUrl(string osPackageUrl) => this with { OsPackageUrl = osPackageUrl };

    /// <summary>
    /// JSON as stmgr writes it: 2-space indent, keys version, os_pkg_url, certificates, signatures,
    /// null arrays when unsigned, no trailing newline.
    /// </summary>
    public byte[] ToJson()
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteNumber("version", CurrentVersion);
            writer.WriteString("os_pkg_url", OsPackageUrl);
            WriteArray(writer, "certificates", Certificates);
            WriteArray(writer, "signatures", Signatures);
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteArray(Utf8JsonWriter writer, string name, IReadOnlyList<string> items)
    {
        if (items.Count == 0) { writer.WriteNull(name); return; }
        writer.WriteStartArray(name);
        foreach (var item in items) writer.WriteStringValue(item);
        writer.WriteEndArray();
    }
}

using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tabula.Cli;

/// <summary>`ospkg verify --json`: the documented shape, one object.</summary>
internal sealed record VerifyOutput(
    bool Accepted, int Found, int Valid, int Required, string ArchiveSha256, IReadOnlyList<SignatureOutput> Signatures);

internal sealed record SignatureOutput(int Index, bool Valid, string Reason, string? Rejection, string? SignerKeySha256);

internal sealed record InspectOutput(
    string Descriptor, string OsPkgUrl, int Signatures, IReadOnlyList<SignerOutput> Signers,
    string? Archive, string? ArchiveSha256, long? ArchiveBytes, ManifestOutput? Manifest, IReadOnlyList<EntryOutput>? Entries);

internal sealed record SignerOutput(int Index, string? CommonName, string? KeySha256, string? NotBefore, string? NotAfter, string Kind, string? Error);

internal sealed record ManifestOutput(string Label, string Kernel, string Initramfs, string Cmdline);

internal sealed record EntryOutput(string Name, long Size, long CompressedSize);

internal sealed record CheckOutput(bool Valid, string File, string? Error, string? Summary, IReadOnlyList<string>? LegacyFields, IReadOnlyList<string>? Warnings);

/// <summary>`image relay --json`: where the package went and what is in it (sizes in bytes).</summary>
internal sealed record RelayImageOutput(
    string Archive, string Descriptor, string OsPkgUrl, string ArchiveSha256, long ArchiveBytes, long GoalBytes, bool WithinGoal,
    string Kernel, long KernelBytes, long InitramfsBytes, long InitramfsUncompressedBytes, string Init, long InitBytes, string Cmdline,
    string FleetUrl, IReadOnlyList<string> FleetCa, IReadOnlyList<string> Modules);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(VerifyOutput))]
[JsonSerializable(typeof(InspectOutput))]
[JsonSerializable(typeof(CheckOutput))]
[JsonSerializable(typeof(RelayImageOutput))]
internal sealed partial class CliJsonContext : JsonSerializerContext
{
    public static void Print<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info) =>
        Console.WriteLine(JsonSerializer.Serialize(value, info));
}

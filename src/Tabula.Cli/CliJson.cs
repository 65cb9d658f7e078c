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

/// <summary>The manifest; <c>release</c> and <c>machine_class</c> (the manifest's tabula object) only when it has them.</summary>
internal sealed record ManifestOutput(string Label, string Kernel, string Initramfs, string Cmdline, long? Release = null, string? MachineClass = null);

internal sealed record EntryOutput(string Name, long Size, long CompressedSize);

/// <summary>A check's verdict. <c>measured_boot</c> (trust policies, issue 19): "required" or "optional" as
/// <c>tabula_measured_boot</c> says, "unset" when the policy has no such key (stboot measures when it finds a TPM, as
/// upstream does), null for files that are not trust policies.</summary>
internal sealed record CheckOutput(bool Valid, string File, string? Error, string? Summary, IReadOnlyList<string>? LegacyFields, IReadOnlyList<string>? Warnings,
    FreshnessOutput? Freshness = null, string? MeasuredBoot = null);

/// <summary>A trust policy's tabula_freshness (`trustpolicy check/create --json`), with the SHA-256 of ticket_root.pem's raw key.</summary>
internal sealed record FreshnessOutput(string Mode, long MinRelease, string? MachineClass, string TicketUrl, string? TicketRootSha256);

/// <summary>`image relay --json`: where the package went and what is in it (sizes in bytes).</summary>
internal sealed record RelayImageOutput(
    string Archive, string Descriptor, string OsPkgUrl, string ArchiveSha256, long ArchiveBytes, long GoalBytes, bool WithinGoal,
    string Kernel, long KernelBytes, long InitramfsBytes, long InitramfsUncompressedBytes, string Init, long InitBytes, string Cmdline,
    string FleetUrl, IReadOnlyList<string> FleetCa, IReadOnlyList<string> Modules, long? Release = null, string? MachineClass = null,
    IReadOnlyList<string>? FleetUrls = null);

/// <summary>`relay attest --json` (issue 19): the verdict, the measured package and the release the controller certified, our nonce,
/// SHA-256 of the quote, and every step made in order.</summary>
internal sealed record AttestOutput(bool Verified, string? PackageSha256, long? Release, string Nonce, string QuoteSha256, IReadOnlyList<AttestStepOutput> Steps)
{
    /// <summary>The platform stboot measured (PCR 13 PlatformSecurity), once measured-boot read it; null otherwise. Added field.</summary>
    public AttestPlatformOutput? Platform { get; init; }

    /// <summary>The quoted SHA-256 PCRs 12, 13, 14 ("12": hex, …) as the log replays to them; only once the event-log step passed. Added field.</summary>
    public IReadOnlyDictionary<string, string>? Pcrs { get; init; }
}

/// <summary>`relay attest --json`'s platform: handover.json's platform object as stboot measured it.</summary>
internal sealed record AttestPlatformOutput(string Firmware,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] bool? SecureBoot,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Lockdown);

internal sealed record AttestStepOutput(string Name, bool Ok, string Detail);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(VerifyOutput))]
[JsonSerializable(typeof(AttestOutput))]
[JsonSerializable(typeof(InspectOutput))]
[JsonSerializable(typeof(CheckOutput))]
[JsonSerializable(typeof(RelayImageOutput))]
internal sealed partial class CliJsonContext : JsonSerializerContext
{
    public static void Print<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info) =>
        Console.WriteLine(JsonSerializer.Serialize(value, info));
}

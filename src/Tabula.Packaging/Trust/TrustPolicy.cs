using System.Buffers;
using System.Text.Json;

namespace Tabula.Packaging;

/// <summary>Where stboot gets the OS package from.</summary>
public enum FetchMethod
{
    /// <summary>Download the descriptor and archive over HTTP(S) from the host config's ospkg_pointer.</summary>
    Network,
    /// <summary>Read /ospkg/NAME.json and /ospkg/NAME.zip from the stboot initramfs.</summary>
    Initramfs,
}

/// <summary>
/// trust_policy.json: how many valid signatures a package needs and how it is fetched. Only valid
/// policies can exist (validated on parse, like stboot's trust/policy.go). Also reads the legacy
/// security_configuration.json keys (min_valid_sigs_required, boot_mode). Written by <see cref="ToJson"/> (always the
/// current keys), so nothing writes this format by hand.
/// </summary>
public sealed record TrustPolicy(int SignatureThreshold, FetchMethod FetchMethod)
{
    /// <summary>True when parsed from the pre-2022 security_configuration.json keys.</summary>
    public bool IsLegacy { get; init; }

    /// <summary>The optional <c>tabula_freshness</c> object (issue 16), or null: no boot ticket, no floor (upstream behaviour).</summary>
    public FreshnessPolicy? Freshness { get; init; }

    /// <summary>The optional <c>tabula_measured_boot</c> mode (issue 19), or null: measure when there is a TPM (upstream's
    /// best effort, like <see cref="MeasuredBootMode.Optional"/>).</summary>
    public MeasuredBootMode? MeasuredBoot { get; init; }

    /// <summary>The trust_policy.json key of <see cref="Freshness"/>.</summary>
    public const string FreshnessKey = "tabula_freshness";

    /// <summary>Parses and validates trust_policy.json (or legacy security_configuration.json) bytes.</summary>
    public static TrustPolicy Parse(ReadOnlySpan<byte> json, string what = "trust_policy.json")
    {
        using var document = JsonFields.ParseObject(json, Limits.MaxConfigJsonBytes, what);
        var fields = new JsonFields(document.RootElement, what);
        bool legacy = !fields.IsPresent("ospkg_signature_threshold") && !fields.IsPresent("ospkg_fetch_method")
            && (fields.IsPresent("min_valid_sigs_required") || fields.IsPresent("boot_mode"));
        string thresholdKey = legacy ? "min_valid_sigs_required" : "ospkg_signature_threshold";
        string methodKey = legacy ? "boot_mode" : "ospkg_fetch_method";
        if (legacy && fields.OptionalInteger("version") is { } version && version != 1)
            PackageFormatException.Throw(FormatError.UnsupportedVersion, $"{what}: version {version} is not supported (only 1)");

        long threshold = fields.RequiredInteger(thresholdKey);
        if (threshold < 1) fields.Invalid(thresholdKey, $"must be greater than 0, got {threshold}");
        if (threshold > Limits.MaxSignatures) fields.Invalid(thresholdKey, $"must be at most {Limits.MaxSignatures}, got {threshold}");
        string method = fields.RequiredString(methodKey);
        var fetch = method switch
        {
            "network" => FetchMethod.Network,
            "initramfs" => FetchMethod.Initramfs,
            _ => fields.Missing<FetchMethod>(methodKey, $"\"network\" or \"initramfs\", got \"{method}\""),
        };
        var freshness = fields.IsPresent(FreshnessKey) ? FreshnessPolicy.Read(fields, FreshnessKey, what) : null;
        MeasuredBootMode? measured = null;
        if (fields.IsPresent(MeasuredBootModes.Key))
            measured = MeasuredBootModes.Parse(fields.OptionalString(MeasuredBootModes.Key))
                ?? fields.Missing<MeasuredBootMode>(MeasuredBootModes.Key, "\"required\" or \"optional\"");
        return new TrustPolicy((int)threshold, fetch) { IsLegacy = legacy, Freshness = freshness, MeasuredBoot = measured };
    }

    /// <summary>
    /// trust_policy.json as stmgr writes it: <c>{"ospkg_signature_threshold": N, "ospkg_fetch_method": "network"}</c>, keys in
    /// that order, newline-terminated, then <c>tabula_freshness</c> when <see cref="Freshness"/> is set and
    /// <c>tabula_measured_boot</c> when <see cref="MeasuredBoot"/> is (a policy without them is byte-identical to stmgr's); <see cref="Parse"/> reads it back to the same values. Throws
    /// <see cref="ArgumentException"/> for a policy <see cref="Parse"/> would refuse (threshold outside 1-64, bad freshness).
    /// </summary>
    public byte[] ToJson()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(SignatureThreshold, 1, nameof(SignatureThreshold));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(SignatureThreshold, Limits.MaxSignatures, nameof(SignatureThreshold));
        Freshness?.Validate();
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteNumber("ospkg_signature_threshold", SignatureThreshold);
            writer.WriteString("ospkg_fetch_method", FetchMethod switch
            {
                FetchMethod.Network => "network",
                FetchMethod.Initramfs => "initramfs",
                _ => throw new ArgumentOutOfRangeException(nameof(FetchMethod)),
            });
            if (Freshness is not null)
            {
                writer.WritePropertyName(FreshnessKey);
                Freshness.Write(writer);
            }
            if (MeasuredBoot is { } measured)
                writer.WriteString(MeasuredBootModes.Key, MeasuredBootModes.Spell(measured));
            writer.WriteEndObject();
        }
        buffer.Write("\n"u8);
        return buffer.WrittenSpan.ToArray();
    }
}

namespace Tabula.Packaging;

/// <summary>
/// What stboot does when it cannot measure (trust_policy.json <c>"tabula_measured_boot": "required" | "optional"</c>;
/// upstream stboot ignores the key, as it ignores every unknown one). Without the key stboot measures when it finds a
/// TPM and goes on without one, as upstream does (best effort): the same as <see cref="Optional"/>.
/// </summary>
public enum MeasuredBootMode
{
    /// <summary>No TPM, or a TPM that refuses an extend: the round fails (stage <c>measure</c>, reason
    /// <c>MeasurementFailed</c>), stboot waits and retries like any other failure; nothing is handed over unmeasured.</summary>
    Required,
    /// <summary>Measure when there is a TPM; without one (or when it fails) say so on the console and in the
    /// hand-over, and boot.</summary>
    Optional,
}

/// <summary>Spellings of <see cref="MeasuredBootMode"/>.</summary>
public static class MeasuredBootModes
{
    /// <summary>The trust_policy.json key.</summary>
    public const string Key = "tabula_measured_boot";

    /// <summary>"required" or "optional".</summary>
    public static string Spell(MeasuredBootMode mode) => mode switch
    {
        MeasuredBootMode.Required => "required",
        MeasuredBootMode.Optional => "optional",
        _ => throw new ArgumentOutOfRangeException(nameof(mode)),
    };

    /// <summary>Parses "required" or "optional".</summary>
    public static MeasuredBootMode? Parse(string? text) => text switch
    {
        "required" => MeasuredBootMode.Required,
        "optional" => MeasuredBootMode.Optional,
        _ => null,
    };
}

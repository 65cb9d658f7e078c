namespace Tabula.Attestation;

/// <summary>
/// The checks of an attestation, in the order a verifier makes them; each name is stable (stored in the controller's
/// machine record, printed by <c>tabula relay attest</c>, in its <c>--json</c>). A verifier stops at the first failure:
/// later steps would check evidence that is already untrusted.
/// </summary>
public static class AttestationStep
{
    /// <summary>The EK certificate chains to a configured TPM manufacturer root.</summary>
    public const string EkCertificate = "ek-certificate";

    /// <summary>The AK sits in the same TPM as the EK: the TPM answered the verifier's credential-activation challenge.</summary>
    public const string AkActivation = "ak-activation";

    /// <summary>The quote is signed by the AK and its qualifying data is SHA-256(the verifier's nonce ‖ the WireGuard key).</summary>
    public const string Quote = "quote";

    /// <summary>The event log replays to the quoted PCR values.</summary>
    public const string EventLog = "event-log";

    /// <summary>The log holds stboot's measurements (the OS package archive and descriptor, the trust policy): the OS was
    /// booted by stboot, not kexec'd or booted directly.</summary>
    public const string MeasuredBoot = "measured-boot";

    /// <summary>The measured package is one the verifier accepts: staff allowed it (controller), or its descriptor verifies
    /// under the signing root and threshold (customer).</summary>
    public const string Package = "package";

    /// <summary>The WireGuard key measured into PCR 14 (and quoted) is the key the verifier talks to.</summary>
    public const string KeyBinding = "key-binding";

    /// <summary>Every step, in order.</summary>
    public static readonly IReadOnlyList<string> All = [EkCertificate, AkActivation, Quote, EventLog, MeasuredBoot, Package, KeyBinding];

    /// <summary>True for a name in <see cref="All"/>.</summary>
    public static bool IsKnown(string? name) => name is not null && All.Contains(name);
}

/// <summary>One step's verdict: its name, whether it passed, and a detail for people (never a customer's key or address).</summary>
public sealed record StepResult(string Name, bool Ok, string Detail)
{
    /// <summary>A passed step.</summary>
    public static StepResult Pass(string name, string detail) => new(name, true, detail);

    /// <summary>A failed step.</summary>
    public static StepResult Fail(string name, string detail) => new(name, false, detail);
}

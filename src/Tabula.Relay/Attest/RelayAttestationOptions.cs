using System.Net.Sockets;
using Tabula.Fleet.Protocol;

namespace Tabula.Relay.Attest;

/// <summary>
/// What the relay does without a working TPM (issue 19). It follows stboot's <c>tabula_measured_boot</c> as handed over:
/// a boot stboot measured has a TPM, so the relay <see cref="Required"/> one too (a TPM that fails now is reported and
/// tried again, and the relay does not enroll without evidence); a boot stboot could not measure (optional policy, no TPM)
/// enrolls without evidence (<see cref="Optional"/>), and the controller's own <c>--attestation</c> decides whether such a
/// relay may serve.
/// </summary>
public enum RelayAttestationMode
{
    /// <summary>Attest when there is a TPM; enroll without evidence when there is none.</summary>
    Optional,
    /// <summary>Enroll only with evidence: no TPM, or a failing one, keeps the agent from enrolling (reported, retried).</summary>
    Required,
}

/// <summary>How the agent reaches its TPM and serves attestation in the tunnel.</summary>
/// <param name="Mode">What a missing or failing TPM means.</param>
/// <param name="Open">Does the boot's TPM work for the fresh WireGuard public key given (<see cref="RelayTpm.Open"/>: EK, AK,
/// the key into PCR 14) and returns the TPM, or null when the machine has none. Called until it succeeds (a failure throws
/// <see cref="Tabula.Tpm.TpmException"/> or <see cref="Tabula.Linux.LinuxException"/>); the agent disposes what it returns
/// when it is an <see cref="IDisposable"/>.</param>
public sealed record RelayAttestationOptions(RelayAttestationMode Mode, Func<byte[], IRelayTpm?> Open)
{
    /// <summary>The in-tunnel service's TCP port on the gateway addresses (<see cref="AttestationBinding.Port"/>; tests may
    /// choose another); 0: no service (the agent still attests at enrollment).</summary>
    public int ServicePort { get; init; } = AttestationBinding.Port;

    /// <summary>Makes the service's listening sockets (in the relay's network namespace; host tests run the agent beside one).</summary>
    public Func<AddressFamily, Socket>? Sockets { get; init; }

    /// <summary>The pause before a TPM that failed (or is missing under <see cref="RelayAttestationMode.Required"/>) is tried again.</summary>
    public TimeSpan Retry { get; init; } = TimeSpan.FromSeconds(10);
}

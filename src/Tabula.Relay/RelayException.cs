using Tabula.Machine.Init;

namespace Tabula.Relay;

/// <summary>Why a stage of the agent failed: one member per distinct failure, printed as the console's reason.</summary>
public enum RelayFailure
{
    /// <summary>The machine could keep data (a disk mounted, swap, a disk root): the relay stops serving.</summary>
    AmnesiaViolation,
    /// <summary>A link the agent needs is not there (wg0 could not be created, or vanished).</summary>
    NoInterface,
    /// <summary>The controller sent a configuration the relay cannot apply.</summary>
    BadConfig,
    /// <summary>The controller's reply is not what the protocol says (JSON, hex).</summary>
    BadReply,
    /// <summary>The controller could not be reached (connection, TLS, DNS).</summary>
    Unreachable,
    /// <summary>The controller did not answer in time.</summary>
    Timeout,
    /// <summary>The controller's reply is over its size limit.</summary>
    ReplyTooLarge,
    /// <summary>The egress configuration does not fit this relay (malformed prefix, pool overlapping the uplink, public
    /// address not on the uplink, …): refused before the kernel is touched.</summary>
    EgressRefused,
    /// <summary>Applying the egress firewall, its sysctls or the in-tunnel resolver failed; the previous table stays.</summary>
    FirewallFailed,
    /// <summary>The machine has no TPM (/dev/tpmrm0, /dev/tpm0) while attestation is required (issue 19).</summary>
    NoTpm,
    /// <summary>The TPM could not be opened, or a TPM command failed (the EK, the AK, the PCR 14 extension, a quote).</summary>
    TpmFailed,
}

/// <summary>A failure of one stage of the agent, with its typed reason for the console, the tests and the code that reacts.</summary>
public sealed class RelayException(string stage, RelayFailure reason, string detail, Exception? inner = null)
    : StageException<RelayFailure>(stage, reason, detail, inner);

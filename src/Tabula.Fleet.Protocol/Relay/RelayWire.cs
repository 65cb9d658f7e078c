using System.Text.Json.Serialization;

namespace Tabula.Fleet.Protocol;

// The /relay/v1 API between the relay agent and the fleet controller (docs/fleet.md "Relay API"): one set of records
// both sides serialize with RelayWireJson, snake_case field names. Request strings are nullable because the
// controller must answer a client that omits them with 400, not crash; the agent always fills them.

/// <summary>POST /relay/v1/enroll/nonce (bearer: enrollment token): a single-use nonce, hex.</summary>
/// <remarks><c>credential</c> (issue 19) is appended and optional: when the request body named the relay's TPM keys
/// (<see cref="AttestationKeys"/>), the controller's credential-activation challenge for its AK, answered in the enrollment.</remarks>
public sealed record NonceResponse(string Nonce, DateTimeOffset ExpiresAt, CredentialChallenge? Credential = null);

/// <summary>POST /relay/v1/enroll (bearer: enrollment token): the agent's identity, fresh WireGuard key, booted package, signed (<see cref="Enrollment"/>).</summary>
/// <remarks><c>freshness</c> (issue 16) is appended and optional: what stboot handed over about this boot's freshness, with the
/// boot ticket (<see cref="FreshnessReport"/>); an older agent omits it. It is not covered by the enrollment signature: the
/// ticket inside is the controller's own signature, naming this machine and package. <c>attestation</c> (issue 19) is appended
/// and optional too: the TPM's evidence (<see cref="AttestationEvidence"/>), bound to the nonce and the WireGuard key by the
/// quote's qualifying data, so the signature need not cover it.</remarks>
public sealed record EnrollBody(string? IdentityKey, string? WireguardPublicKey, string? PackageDigest, string? Nonce, string? Signature,
    FreshnessReport? Freshness = null, AttestationEvidence? Attestation = null);

/// <summary>The enrolled machine, its state, and the relay token for every later call.</summary>
/// <remarks><c>command_key</c> (issue 18) is appended: the controller's command key (its ticket key's public half, base64 of 32
/// bytes) that signs reboot commands (<see cref="RebootCommand"/>); an older controller omits it and sends none. <c>attestation</c>
/// (issue 19, appended after it) is the controller's verdict on the evidence, with the AK certificate when it attested.</remarks>
public sealed record EnrollResponse(string MachineId, string State, string RelayToken, string? CommandKey = null, AttestationOutcome? Attestation = null);

/// <summary>GET /relay/v1/command?after=N (long poll): the newest reboot command for this boot with a sequence above N, as base64
/// of its bytes (<see cref="RebootCommand"/>); 204 when there is none within the poll.</summary>
public sealed record CommandResponse(string Command);

/// <summary>POST /relay/v1/command/ack: what the relay made of command <c>sequence</c>: accepted, or refused with the reason's
/// name (<see cref="RebootRefusalNames"/>).</summary>
public sealed record CommandAckRequest(long Sequence, bool Accepted, string? Refusal = null);

/// <summary>GET /relay/v1/config: what a relay needs to serve, and whether it may (<c>state</c> says when staff have provisioned it).</summary>
/// <remarks>
/// Fields after <c>ipv6_gateway</c> are the egress settings (docs/relay.md "Egress"), appended with defaults so a reply
/// without them (an older controller) still parses: <c>dns_upstreams</c> the in-tunnel resolver's upstream addresses
/// (empty: the relay serves without DNS); <c>blocked_prefixes</c> the operator's prefixes added to the relay's default
/// private ranges; <c>public_ipv4</c>/<c>public_ipv6</c> the placement's egress addresses (<c>ipv4_addr_out</c>/
/// <c>ipv6_addr_out</c>) if staff gave them, else its <c>ipv4_addr_in</c>/<c>ipv6_addr_in</c>: the addresses customers are NATed to (null: masquerade); <c>private_endpoints</c> management addresses customers must
/// never reach (the controller's own listen addresses).
/// </remarks>
public sealed record RelayConfigView(string MachineId, string State, int ListenPort, string Ipv4Gateway, string Ipv6Gateway,
    IReadOnlyList<string>? DnsUpstreams = null, IReadOnlyList<string>? BlockedPrefixes = null, string? PublicIpv4 = null,
    string? PublicIpv6 = null, IReadOnlyList<string>? PrivateEndpoints = null);

/// <summary>POST /relay/v1/applied: the revision the relay's device holds.</summary>
public sealed record AppliedRequest(long Revision);

/// <summary>POST /relay/v1/health: aggregate counts only, never a customer key, endpoint or time of a handshake.</summary>
/// <remarks>The egress totals (forwarded, dropped by isolation, NAT table size, DNS answers) are appended with
/// defaults: an older agent's report parses with zeros. Then how much of the peer set the device serves (issue 17, peer
/// limit): <c>peers_wanted</c> in the controller's set at <c>applied_revision</c>, <c>peers_applied</c> of them on the
/// device, <c>peers_pending</c> waiting for room, <c>peers_outside_pool</c> refused for addresses outside the relay's pools,
/// <c>partial_apply</c> and its reason (<c>peer_limit</c>, <c>device_refused:ERRNO</c>, <c>outside_pool</c>, comma-separated;
/// at most <see cref="MaxPartialReasonLength"/> characters); an older agent's report reads as not partial. Then (issue 18,
/// dashboard), optional and absent from an older agent: <c>handshakes_last_3_minutes</c> (peers with a handshake in the
/// last 3 minutes, WireGuard's rekey window: connected peers), <c>uptime_seconds</c> (since the agent, PID 1, started) and
/// <c>agent_version</c> (at most <see cref="MaxAgentVersionLength"/> characters of [A-Za-z0-9.+-]).</remarks>
public sealed record HealthReport(long Peers, long HandshakesLastMinute, long RxBytes, long TxBytes, long AppliedRevision,
    long ForwardedPackets = 0, long ForwardedBytes = 0, long IsolationDroppedPackets = 0, long NatEntries = 0, long DnsQueriesAnswered = 0,
    long PeersWanted = 0, long PeersApplied = 0, long PeersPending = 0, long PeersOutsidePool = 0, bool PartialApply = false, string? PartialReason = null,
    [property: JsonPropertyName("handshakes_last_3_minutes")] long? HandshakesLast3Minutes = null, long? UptimeSeconds = null,
    string? AgentVersion = null)
{
    /// <summary>The longest <c>partial_reason</c> the controller keeps (every reason the agent knows, with an errno name, fits).</summary>
    public const int MaxPartialReasonLength = 64;

    /// <summary>The longest <c>agent_version</c> the controller keeps.</summary>
    public const int MaxAgentVersionLength = 32;
}

/// <summary>Every error answer of the controller (all APIs, not only /relay/v1).</summary>
public sealed record ErrorBody(string Error, string Message);

/// <summary>The /relay/v1 paths.</summary>
public static class RelayRoutes
{
    /// <summary>The route group.</summary>
    public const string Prefix = "/relay/v1";
    /// <summary>Paths below <see cref="Prefix"/>.</summary>
    public const string Nonce = "/enroll/nonce", Enroll = "/enroll", Peers = "/peers", Applied = "/applied", Config = "/config", Health = "/health",
        Command = "/command", CommandAck = "/command/ack";
}

/// <summary>The source-generated JSON context of the relay wire (AOT-safe; the static agent uses nothing else).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(NonceResponse))]
[JsonSerializable(typeof(EnrollBody))]
[JsonSerializable(typeof(EnrollResponse))]
[JsonSerializable(typeof(RelayConfigView))]
[JsonSerializable(typeof(AppliedRequest))]
[JsonSerializable(typeof(HealthReport))]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(CommandResponse))]
[JsonSerializable(typeof(CommandAckRequest))]
[JsonSerializable(typeof(AttestationKeys))]
public sealed partial class RelayWireJson : JsonSerializerContext;

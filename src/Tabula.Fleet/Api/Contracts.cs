using System.Text.Json.Serialization;
using Tabula.Fleet.Core;
using Tabula.Fleet.Protocol;

namespace Tabula.Fleet.Api;

// The /relay/v1 records (NonceResponse, EnrollBody, …, ErrorBody) are Tabula.Fleet.Protocol's (RelayWire.cs); FleetJson
// lists them too, so the whole HTTP surface has one context.
// Request bodies: strings are nullable because a client may omit them; handlers validate and answer 400.
public sealed record LoginRequest(string? Username, string? Password, string? Totp);
/// <summary>A session; <c>totp_enrollment_required</c>: it may only enroll TOTP (POST /api/v1/me/totp, then confirm), then log in again.</summary>
public sealed record LoginResponse(string Token, string Username, string Role, DateTimeOffset ExpiresAt, bool? TotpEnrollmentRequired = null);
public sealed record CreateStaffRequest(string? Username, string? Password, string? Role);
public sealed record StaffView(string Username, string Role, bool TotpEnabled, bool Active = true, bool Locked = false);
public sealed record StaffCreated(string Username, string Role, string? ApiToken);
public sealed record NameRequest(string? Name);
/// <summary>A new token, shown once, with its id (to revoke it) and expiry (none: it never expires).</summary>
public sealed record TokenResponse(string Token, string? Id = null, DateTimeOffset? ExpiresAt = null);
/// <summary>An API token (name, expires) or enrollment token (also single_use, machine). <c>expires</c>: 90d, 12h, an ISO time, never.</summary>
public sealed record CreateTokenRequest(string? Name, string? Expires = null, bool? SingleUse = null, string? Machine = null);
/// <summary>A token as listed: never the secret.</summary>
public sealed record TokenView(string Id, string Kind, string Name, string Owner, string? Role, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt,
    DateTimeOffset? LastUsedAt, bool SingleUse, DateTimeOffset? UsedAt, string? Machine)
{
    public static TokenView From(TokenInfo t) => new(t.Id, t.Kind.Name(), t.Name, t.Owner, t.Role?.Name(), At(t.CreatedAt), At(t.ExpiresAt),
        At(t.LastUsedAt), t.SingleUse, At(t.UsedAt), t.Machine);

    private static DateTimeOffset At(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);
    private static DateTimeOffset? At(long? ms) => ms is { } v ? DateTimeOffset.FromUnixTimeMilliseconds(v) : null;
}
public sealed record RoleRequest(string? Role, string? Reason);
public sealed record TotpBeginResponse(string Secret, string Uri);
public sealed record CodeRequest(string? Code);
/// <summary>A lifecycle action's reason; <c>override_freshness</c> (deploy only) deploys a machine whose boot is not known fresh.</summary>
public sealed record ReasonRequest(string? Reason, bool? OverrideFreshness = null);
public sealed record ProvisionRequest(
    string? Hostname, string? CountryCode, string? Country, string? CityCode, string? City, string? Provider, bool Owned,
    string? Ipv4AddrIn, string? Ipv6AddrIn, int? Port, int? Weight, bool? IncludeInCountry, string? Reason,
    double? Latitude = null, double? Longitude = null, string? Ipv4AddrOut = null, string? Ipv6AddrOut = null);
public sealed record MachineView(
    string Id, string State, string? PreviousState, string WireguardPublicKey, string PackageDigest, RelayPlacement? Placement,
    long AppliedRevision, DateTimeOffset EnrolledAt, DateTimeOffset UpdatedAt, string Fingerprint,
    long? Release = null, string? MachineClass = null, long? Floor = null, bool BelowFloor = false, string? Freshness = null,
    string? FreshnessReason = null, string? Attestation = null, string? AttestationFailedStep = null, string? AttestationDetail = null,
    string? AttestedPackageDigest = null, long? AttestedRelease = null)
{
    // Attestation fields (issue 19) are appended: attested|failed|absent as the latest enrollment left it, the step that failed and
    // why, and what an attested boot measured. Null: the machine enrolled before the controller knew attestation.
    public MachineView WithAttestation(MachineAttestation? a) => a is null ? this : this with
    {
        Attestation = a.Status.Name(), AttestationFailedStep = a.FailedStep, AttestationDetail = a.Detail,
        AttestedPackageDigest = a.PackageDigest, AttestedRelease = a.Status == AttestationStatus.Attested ? a.Release : null,
    };

    // Freshness fields (issue 16) are appended: release (staff-named for its package, else reported), class, the class floor,
    // below_floor, freshness (fresh|unfresh|unreported) and its reason.
    public static MachineView From(Machine m) => From(m, null);

    public static MachineView From(Machine m, ReleaseService.MachineRelease? r) => new(m.Id, m.State.Name(), m.PreviousState?.Name(),
        WireGuardPublicKey.FromBytes(m.WireGuardKey).ToBase64(), m.PackageDigest, m.Placement, m.AppliedRevision,
        DateTimeOffset.FromUnixTimeMilliseconds(m.EnrolledAt), DateTimeOffset.FromUnixTimeMilliseconds(m.UpdatedAt),
        Enrollment.Fingerprint(m.IdentityKey, m.WireGuardKey), r?.Release, r?.MachineClass, r?.Floor, r?.BelowFloor ?? false,
        r is null ? null : (r.Freshness?.Status ?? FreshnessStatus.Unreported).Name(), r?.Freshness?.Reason);
}
public sealed record AllowPackageRequest(string? Digest, string? Reason);
/// <summary>A withdrawn package and the deployed machines that were running it, now draining.</summary>
public sealed record WithdrawnView(string Digest, List<string> Drained);
/// <summary>A relay's latest health report. <c>peers</c> is what its device holds; <c>peers_wanted</c> the set at its revision,
/// <c>peers_applied</c> of them on the device, <c>peers_pending</c> waiting for room, <c>peers_outside_pool</c> refused;
/// <c>partial_apply</c> with <c>partial_reason</c> (peer_limit, device_refused:ERRNO, outside_pool) when it serves part of the set.
/// Issue 18: <c>handshakes_last_3_minutes</c>, <c>uptime_seconds</c>, <c>agent_version</c> when the agent sent them.</summary>
public sealed record HealthView(string MachineId, long Peers, long HandshakesLastMinute, long RxBytes, long TxBytes, long AppliedRevision,
    DateTimeOffset ReportedAt, long PeersWanted = 0, long PeersApplied = 0, long PeersPending = 0, long PeersOutsidePool = 0,
    bool PartialApply = false, string? PartialReason = null,
    [property: JsonPropertyName("handshakes_last_3_minutes")] long? HandshakesLast3Minutes = null, long? UptimeSeconds = null,
    string? AgentVersion = null);
public sealed record AppliedView(long Revision, long Head, long Deployed, long Applied);
/// <summary>GET /api/v1/health/samples (issue 18): one point per sample time, summed over locations (or one), oldest first.</summary>
public sealed record HealthSamplesView(int IntervalSeconds, int RetentionHours, List<HealthPointView> Points);
public sealed record HealthPointView(DateTimeOffset At, long Deployed, long Serving, long Peers, long Connected, long Locations);
public sealed record CreateAccountRequest(int? DeviceLimit);
/// <summary>An account: its id, and its number only in the answer that created it (the controller keeps no number to show later).</summary>
public sealed record AccountView(string Id, int DeviceLimit, DateTimeOffset CreatedAt, string? Number = null);
public sealed record AddDeviceRequest(string? PublicKey);
public sealed record DeviceView(long Id, string PublicKey, string Ipv4Address, string Ipv6Address, DateTimeOffset CreatedAt, long Revision)
{
    public static DeviceView From(Device d) => new(d.Id, WireGuardPublicKey.FromBytes(d.PublicKey).ToBase64(), d.Ipv4, d.Ipv6,
        DateTimeOffset.FromUnixTimeMilliseconds(d.CreatedAt), d.Revision);
}
public sealed record RevisionResponse(long Revision);
public sealed record AuditView(long Id, DateTimeOffset At, string Actor, string Action, string Target, string? Reason, string? Detail);

// Relay list: Mullvad's app/v1/relays shape (what mullvad-api/src/relay_list.rs deserializes: locations with coordinates,
// WireGuard relays, and a bridge section, empty here because Tabula runs no bridges), plus the booted package digest and
// Mullvad's per-relay "stboot" flag (every Tabula relay is booted by stboot).
public sealed record RelayList(SortedDictionary<string, LocationView> Locations, WireguardRelays Wireguard, BridgeRelays Bridge);
public sealed record LocationView(string Country, string City, double Latitude, double Longitude);
public sealed record WireguardRelays(int[][] PortRanges, string Ipv4Gateway, string Ipv6Gateway, List<RelayView> Relays);
public sealed record BridgeRelays(List<ShadowsocksView> Shadowsocks, List<RelayView> Relays);
public sealed record ShadowsocksView(int Port, string Cipher, string Protocol);
public sealed record RelayView(
    string Hostname, string Location, bool Active, bool Owned, string Provider, string Ipv4AddrIn, string? Ipv6AddrIn,
    bool IncludeInCountry, int Weight, string PublicKey, string PackageDigest, bool Stboot = true,
    string? AttestedPackageDigest = null, long? AttestedRelease = null, string? AkCertificate = null)
{
    /// <summary>With the attested fields of an <see cref="AttestationStatus.Attested"/> record; otherwise as is.</summary>
    public RelayView WithAttestation(MachineAttestation? a) => a is { Status: AttestationStatus.Attested } ? this with
    {
        AttestedPackageDigest = a.PackageDigest, AttestedRelease = a.Release,
        AkCertificate = a.AkCertificate is { } c ? Convert.ToBase64String(c) : null,
    } : this;
}
// RelayView's attestation fields (issue 19) are appended and omitted when null, so the Mullvad-shaped list stays readable: the
// package digest and release the controller verified at the relay's latest enrollment, and the AK certificate it issued (base64
// DER, under the CA of GET /app/v1/attestation-ca). A relay that did not attest has none of them.

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(LoginRequest))]
[JsonSerializable(typeof(LoginResponse))]
[JsonSerializable(typeof(CreateStaffRequest))]
[JsonSerializable(typeof(StaffView))]
[JsonSerializable(typeof(StaffCreated))]
[JsonSerializable(typeof(List<StaffView>))]
[JsonSerializable(typeof(NameRequest))]
[JsonSerializable(typeof(TokenResponse))]
[JsonSerializable(typeof(CreateTokenRequest))]
[JsonSerializable(typeof(TokenView))]
[JsonSerializable(typeof(List<TokenView>))]
[JsonSerializable(typeof(RoleRequest))]
[JsonSerializable(typeof(TotpBeginResponse))]
[JsonSerializable(typeof(CodeRequest))]
[JsonSerializable(typeof(NonceResponse))]
[JsonSerializable(typeof(AttestationKeys))]
[JsonSerializable(typeof(EnrollBody))]
[JsonSerializable(typeof(EnrollResponse))]
[JsonSerializable(typeof(ReasonRequest))]
[JsonSerializable(typeof(ProvisionRequest))]
[JsonSerializable(typeof(MachineView))]
[JsonSerializable(typeof(List<MachineView>))]
[JsonSerializable(typeof(AllowPackageRequest))]
[JsonSerializable(typeof(WithdrawnView))]
[JsonSerializable(typeof(List<string>))]
[JsonSerializable(typeof(AppliedRequest))]
[JsonSerializable(typeof(AppliedView))]
[JsonSerializable(typeof(RelayConfigView))]
[JsonSerializable(typeof(HealthReport))]
[JsonSerializable(typeof(HealthView))]
[JsonSerializable(typeof(List<HealthView>))]
[JsonSerializable(typeof(HealthSamplesView))]
[JsonSerializable(typeof(CreateAccountRequest))]
[JsonSerializable(typeof(AccountView))]
[JsonSerializable(typeof(AddDeviceRequest))]
[JsonSerializable(typeof(DeviceView))]
[JsonSerializable(typeof(List<DeviceView>))]
[JsonSerializable(typeof(RevisionResponse))]
[JsonSerializable(typeof(List<AuditView>))]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(RelayList))]
[JsonSerializable(typeof(SetCurrentReleaseRequest))]
[JsonSerializable(typeof(ReleaseFloorRequest))]
[JsonSerializable(typeof(ReleaseClassView))]
[JsonSerializable(typeof(List<ReleaseClassView>))]
[JsonSerializable(typeof(SelfServiceAccountRequest))]
[JsonSerializable(typeof(AccountChallengeView))]
[JsonSerializable(typeof(CreateVoucherRequest))]
[JsonSerializable(typeof(VoucherCreated))]
[JsonSerializable(typeof(List<VoucherView>))]
[JsonSerializable(typeof(StartRolloutRequest))]
[JsonSerializable(typeof(RolloutView))]
[JsonSerializable(typeof(CommandResponse))]
[JsonSerializable(typeof(CommandAckRequest))]
public sealed partial class FleetJson : JsonSerializerContext;

namespace Tabula.Fleet;

/// <summary>Lifecycle of a relay machine. See Core/MachineLifecycle.cs for the allowed transitions.</summary>
public enum MachineState { Awaiting, Provisioned, Deployed, Draining, Retired }

/// <summary>Staff roles, ordered: each includes the rights of the ones before it.</summary>
public enum StaffRole { Viewer, Operator, Admin }

/// <summary>
/// Where and how a relay serves, set by staff at provisioning. <see cref="Latitude"/>/<see cref="Longitude"/> are the
/// city's (given by staff or from <see cref="Core.CityTable"/>); placements stored before they existed have none.
/// <see cref="Ipv4AddrOut"/>/<see cref="Ipv6AddrOut"/> are separate egress addresses, if staff gave them: the relay NATs
/// its customers to them instead of the in-addresses (<see cref="EgressIpv4"/>, <see cref="EgressIpv6"/>). The placement
/// is stored as one JSON column, so these appended fields need no schema change: a placement stored without them reads
/// back with none, which means "egress on the in-addresses", as before.
/// </summary>
public sealed record RelayPlacement(
    string Hostname, string CountryCode, string Country, string CityCode, string City,
    string Provider, bool Owned, string Ipv4AddrIn, string? Ipv6AddrIn, int Port, int Weight, bool IncludeInCountry,
    double? Latitude = null, double? Longitude = null, string? Ipv4AddrOut = null, string? Ipv6AddrOut = null)
{
    /// <summary>The IPv4 address customers are NATed to: the egress address if given, else the in-address.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string EgressIpv4 => Ipv4AddrOut ?? Ipv4AddrIn;

    /// <summary>The IPv6 address customers are NATed to: the egress address if given, else the in-address (may be none).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string? EgressIpv6 => Ipv6AddrOut ?? Ipv6AddrIn;
}

public sealed record Machine(
    string Id, MachineState State, MachineState? PreviousState, byte[] IdentityKey, byte[] WireGuardKey,
    string PackageDigest, RelayPlacement? Placement, long AppliedRevision, long EnrolledAt, long UpdatedAt);

/// <summary>
/// A staff member; <see cref="DeactivatedAt"/> set means no login, session or token of theirs works. <see cref="LockedAt"/> set
/// means too many failed logins in a row: password logins are refused until an admin unlocks them (their sessions and tokens still work).
/// </summary>
public sealed record Staff(long Id, string Username, StaffRole Role, string PasswordHash, byte[]? TotpSecret,
    bool TotpEnabled, long TotpLastStep, long? DeactivatedAt = null, long? LockedAt = null)
{
    public bool Active => DeactivatedAt is null;
    public bool Locked => LockedAt is not null;
}

/// <summary>The kinds of bearer token staff can list and revoke (<see cref="Core.TokenService"/>).</summary>
public enum TokenKind { Session, Api, Enrollment }

/// <summary>
/// A token as listed: never its secret. <see cref="Id"/> is "KIND-N" (api-12, session-3, enrollment-5). Owner is the
/// staff member a session or API token acts as, or who created an enrollment token; role is the owner's (staff tokens).
/// </summary>
public sealed record TokenInfo(string Id, TokenKind Kind, string Name, string Owner, StaffRole? Role, long CreatedAt, long? ExpiresAt,
    long? LastUsedAt, bool SingleUse = false, long? UsedAt = null, string? Machine = null);

/// <summary>An enrollment token's row: optional expiry, single use (spent at the first enrollment), binding to one machine id.</summary>
public sealed record EnrollmentToken(long Id, string Name, string CreatedBy, long CreatedAt, long? ExpiresAt, bool SingleUse, long? UsedAt,
    string? Machine, long? LastUsedAt);

/// <summary>
/// A customer account as stored: the HMAC of its number (lowercase hex, <see cref="Security.SecretsKey.AccountNumberHmac"/>),
/// never the number. <see cref="PublicId"/> is what staff and the customer see of it after creation.
/// </summary>
public sealed record Account(long Id, string NumberHmac, long CreatedAt, int DeviceLimit)
{
    /// <summary>The account id: the HMAC's first 16 hex digits (names the account without being its credential).</summary>
    public string PublicId => Security.SecretsKey.AccountId(NumberHmac);
}

/// <summary>An account just created, with its number: the only time the number exists outside the customer's hands.</summary>
public sealed record NewAccount(Account Account, string Number);

public sealed record Device(long Id, long AccountId, byte[] PublicKey, string Ipv4, string Ipv6, long CreatedAt, long Revision);

public enum PeerChangeKind { Add = 1, Remove = 2 }

/// <summary>
/// One entry of the peer log: the set after it has hash <see cref="SetHash"/>. <see cref="DeviceId"/> names the device
/// (null in entries written before schema 3); once every relay has applied an entry of a deleted device, the log keeps
/// only its revision, kind, device id and addresses (<see cref="Storage.IKeyScrubTx"/>), never served again.
/// </summary>
public sealed record PeerChange(long Revision, PeerChangeKind Kind, byte[] PublicKey, string Ipv4, string Ipv6, byte[] SetHash, long? DeviceId = null);

public sealed record AuditEntry(long Id, long At, string Actor, string Action, string Target, string? Reason, string? Detail);

/// <summary>
/// One page of the audit trail (issue 18, dashboard): up to <see cref="Limit"/> entries with an id below <see cref="Before"/>
/// (null: from the newest), each filter a substring of its column in any case (null or empty: any).
/// </summary>
public sealed record AuditQuery(int Limit, long? Before = null, string? Actor = null, string? Action = null, string? Target = null);

public static class MachineStateNames
{
    public static string Name(this MachineState state) => state switch
    {
        MachineState.Awaiting => "awaiting",
        MachineState.Provisioned => "provisioned",
        MachineState.Deployed => "deployed",
        MachineState.Draining => "draining",
        MachineState.Retired => "retired",
        _ => throw new ArgumentOutOfRangeException(nameof(state)),
    };

    public static bool TryParseState(string? text, out MachineState state)
    {
        foreach (var s in Enum.GetValues<MachineState>())
            if (s.Name() == text) { state = s; return true; }
        state = default;
        return false;
    }

    public static string Name(this StaffRole role) => role switch
    {
        StaffRole.Viewer => "viewer", StaffRole.Operator => "operator", StaffRole.Admin => "admin",
        _ => throw new ArgumentOutOfRangeException(nameof(role)),
    };

    public static bool TryParseRole(string? text, out StaffRole role)
    {
        foreach (var r in Enum.GetValues<StaffRole>())
            if (r.Name() == text) { role = r; return true; }
        role = default;
        return false;
    }

    public static string Name(this TokenKind kind) => kind switch
    {
        TokenKind.Session => "session", TokenKind.Api => "api", TokenKind.Enrollment => "enrollment",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    public static bool TryParseTokenKind(string? text, out TokenKind kind)
    {
        foreach (var k in Enum.GetValues<TokenKind>())
            if (k.Name() == text) { kind = k; return true; }
        kind = default;
        return false;
    }
}

/// <summary>
/// One location at one sample time (issue 18, schema 11): deployed relays, those serving (a health report younger than
/// <see cref="FleetLimits.ServingReportAge"/>), their peers and connected peers (handshake in 3 minutes). The location is
/// the relay list's public "cc-city" code; nothing else about a relay or a customer is kept.
/// </summary>
public sealed record HealthSample(long At, string Location, int Deployed, int Serving, long Peers, long Connected);

/// <summary>The sum over locations (or one location) of the samples of one time, and how many locations it sums.</summary>
public sealed record HealthPoint(long At, long Deployed, long Serving, long Peers, long Connected, long Locations);

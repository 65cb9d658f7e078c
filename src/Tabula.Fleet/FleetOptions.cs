namespace Tabula.Fleet;

/// <summary>How a controller instance runs. The CLI maps `tabula fleet serve` options (and TABULA_FLEET_* variables) onto this.</summary>
public sealed record FleetOptions
{
    /// <summary>"sqlite:PATH" (default, one instance) or "postgres:CONNECTION-STRING" (several instances).</summary>
    public string Database { get; init; } = "sqlite:fleet.db";

    /// <summary>
    /// Listen addresses, ';'-separated; loopback by default. https://HOST:PORT speaks TLS with HTTP/1.1 and HTTP/2
    /// (ALPN) and needs <see cref="TlsCertificatePath"/> and <see cref="TlsKeyPath"/>: what relays, which pin the
    /// controller's CA, connect to. http://HOST:PORT speaks HTTP/1.1 (browsers, curl, a TLS terminator);
    /// h2c://HOST:PORT speaks only cleartext HTTP/2 with prior knowledge, for HTTP/2 terminators.
    /// </summary>
    public string Urls { get; init; } = "http://127.0.0.1:8380";

    /// <summary>Server certificate chain (PEM) for https:// addresses, e.g. server.pem of `tabula fleet tls init`.</summary>
    public string? TlsCertificatePath { get; init; }

    /// <summary>The certificate's private key (PEM, PKCS#8 or SEC1), e.g. server.key.</summary>
    public string? TlsKeyPath { get; init; }

    public string Ipv4Pool { get; init; } = "10.64.0.0/10";
    public string Ipv6Pool { get; init; } = "fc00:bbbb:bbbb:bb01::/64";

    /// <summary>
    /// Upstream resolvers (IP addresses, port 53) of the relays' in-tunnel DNS. None: relays serve without DNS (and
    /// say so on their console). There is deliberately no built-in default.
    /// </summary>
    public IReadOnlyList<string> RelayResolvers { get; init; } = [];

    /// <summary>Prefixes customers may never reach, added to the relays' default private ranges (RFC 1918, …).</summary>
    public IReadOnlyList<string> RelayBlockedPrefixes { get; init; } = [];

    /// <summary>
    /// Accept relay in- and egress addresses in the relays' default private ranges (RFC 1918, 100.64/10, fc00::/7) at
    /// provision: a fleet on a private network (tests, a lab without the internet). Off: refused with 400.
    /// </summary>
    public bool RelayPrivateAddresses { get; init; }

    /// <summary>
    /// The boot-ticket key (Ed25519, PKCS#8 PEM, mode 0600), made at first start if missing. Null: <c>ticket-key.pem</c>
    /// next to a SQLite database; a PostgreSQL fleet must name it (the same file on every instance).
    /// </summary>
    public string? TicketKeyPath { get; init; }

    /// <summary>
    /// The at-rest key (<see cref="Security.SecretsKey"/>: 64 hex digits, mode 0600), made at first start if missing: accounts are
    /// stored as the HMAC of their number and TOTP secrets sealed under it. Null: <c>fleet-secrets.key</c> next to a SQLite
    /// database; a PostgreSQL fleet must name it (the same file on every instance). Losing it loses every account.
    /// </summary>
    public string? SecretsKeyPath { get; init; }

    /// <summary>
    /// Whether relays must attest with their TPM at enrollment (issue 19, docs/attestation.md). Optional by default: evidence is
    /// checked and recorded when sent. Required: a relay without evidence, or failing a step, is never put into service.
    /// </summary>
    public AttestationPolicy Attestation { get; init; } = AttestationPolicy.Optional;

    /// <summary>
    /// The TPM manufacturer roots (a PEM bundle; intermediates may follow) EK certificates must chain to. Without it, every
    /// relay's evidence fails at step ek-certificate (so <see cref="AttestationPolicy.Required"/> needs it, checked at start).
    /// </summary>
    public string? TpmRootsPath { get; init; }

    /// <summary>
    /// The attestation CA (<see cref="Security.AttestationCa"/>: ECDSA key and certificate, PEM, mode 0600), made at first start
    /// if missing. Null: <c>attestation-ca.pem</c> next to a SQLite database; a PostgreSQL fleet without it verifies relays but issues no AK certificates (and may not require attestation).
    /// </summary>
    public string? AttestationCaPath { get; init; }

    /// <summary>How customer accounts are created on <c>POST /app/v1/accounts</c> (staff always can, on /api/v1/customers).</summary>
    public AccountCreation AccountCreation { get; init; } = AccountCreation.Voucher;

    /// <summary>Leading zero bits a proof of work needs when <see cref="AccountCreation"/> is ProofOfWork (~2^bits hashes).</summary>
    public int ProofOfWorkBits { get; init; } = FleetLimits.DefaultProofOfWorkBits;

    /// <summary>
    /// A removed device's tunnel addresses go to a new device only after every relay applied the removal and this much time
    /// passed (so logs, abuse reports and connection tables that name the address keep meaning the old device for a while).
    /// </summary>
    public TimeSpan AddressQuarantine { get; init; } = FleetLimits.DefaultAddressQuarantine;

    /// <summary>Devices an account may add per <see cref="DeviceChurnWindow"/> (device churn; a refusal is 429 with Retry-After).</summary>
    public int DeviceAddsPerWindow { get; init; } = FleetLimits.DefaultDeviceAddsPerWindow;

    public TimeSpan DeviceChurnWindow { get; init; } = FleetLimits.DefaultDeviceChurnWindow;

    /// <summary>
    /// Devices the whole fleet may hold; one more is 409 fleet_full. Every relay receives every device, so this must not
    /// exceed what one relay's WireGuard device holds (<see cref="Protocol.PeerCapacity.KernelMaxPeers"/>, refused at start).
    /// </summary>
    public int FleetCapacity { get; init; } = Protocol.PeerCapacity.DefaultFleetCapacity;

    /// <summary>
    /// Whether admins and operators must have TOTP to log in with a password (issue 17). Required by default: such a staff member
    /// without TOTP gets a session that can only enroll it. Optional is the operator's explicit choice, audited at every start.
    /// </summary>
    public StaffTotp StaffTotp { get; init; } = StaffTotp.Required;

    /// <summary>Consecutive failed logins after which a staff member is locked out until an admin unlocks them (audited).</summary>
    public int LoginLockoutThreshold { get; init; } = FleetLimits.DefaultLoginLockoutThreshold;

    /// <summary>Request rate limits per endpoint group, per source address and per credential.</summary>
    public FleetRateLimits RateLimits { get; init; } = new();

    /// <summary>Connections Kestrel holds at once (all clients); more are refused.</summary>
    public int MaxConnections { get; init; } = FleetLimits.DefaultMaxConnections;

    /// <summary>Connections one client address (an IPv6 /64) may hold at once; more are closed at once.</summary>
    public int MaxConnectionsPerClient { get; init; } = FleetLimits.DefaultMaxConnectionsPerClient;

    /// <summary>How long a rollout's reboot command is valid (its expires_at); one its relay did not take in time is signed again.</summary>
    public TimeSpan RebootCommandLifetime { get; init; } = FleetLimits.RebootCommandLifetime;

    /// <summary>Minimum log level for Tabula's own messages.</summary>
    public Microsoft.Extensions.Logging.LogLevel LogLevel { get; init; } = Microsoft.Extensions.Logging.LogLevel.Information;
}

/// <summary>How <c>POST /app/v1/accounts</c> admits a new customer.</summary>
public enum AccountCreation
{
    /// <summary>Only with a voucher code staff issued (`tabula fleet vouchers create`). The default.</summary>
    Voucher,
    /// <summary>With a voucher, or with a solved proof-of-work challenge (POST /app/v1/accounts/challenge).</summary>
    ProofOfWork,
    /// <summary>Anyone, with nothing: only when the operator says so.</summary>
    Open,
}

/// <summary>Whether staff who can change the fleet (operators, admins) need TOTP for a password login.</summary>
public enum StaffTotp
{
    /// <summary>They do: without TOTP enrolled, a login gives a session that can only enroll it. The default.</summary>
    Required,
    /// <summary>They don't (the operator's choice; audited as staff.totp-optional at every start).</summary>
    Optional,
}

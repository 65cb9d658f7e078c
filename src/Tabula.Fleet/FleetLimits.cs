namespace Tabula.Fleet;

/// <summary>Every bound the controller enforces, in one place. Arbitrary limits say so.</summary>
public static class FleetLimits
{
    /// <summary>Largest accepted request body. The biggest legitimate body is a provision request (&lt; 2 KiB).</summary>
    public const long MaxRequestBodyBytes = 64 * 1024;

    /// <summary>Default number of devices (WireGuard keys) per customer account, as Mullvad.</summary>
    public const int DefaultDeviceLimit = 5;

    /// <summary>OWASP 2023 guidance for PBKDF2-HMAC-SHA256.</summary>
    public const int Pbkdf2Iterations = 600_000;

    /// <summary>Staff dashboard sessions expire after this.</summary>
    public static readonly TimeSpan SessionLifetime = TimeSpan.FromHours(12);

    /// <summary>API and enrollment tokens expire after this unless created with another --expires (never only by name).</summary>
    public static readonly TimeSpan DefaultTokenLifetime = TimeSpan.FromDays(90);

    /// <summary>The furthest expiry a token may be given short of never (arbitrary: ten years).</summary>
    public static readonly TimeSpan MaxTokenLifetime = TimeSpan.FromDays(3660);
    public const int MaxExpiresLength = 40;

    /// <summary>A token's last use is written at most this often (one write per token per minute, not one per request).</summary>
    public static readonly TimeSpan TokenLastUsedGranularity = TimeSpan.FromMinutes(1);

    /// <summary>An enrollment nonce must be used within this time, once.</summary>
    public static readonly TimeSpan EnrollmentNonceLifetime = TimeSpan.FromMinutes(2);

    /// <summary>Recent peer changes kept in memory for fan-out to subscribers (arbitrary; ~100 bytes each).</summary>
    public const int PeerRingCapacity = 1 << 17;

    /// <summary>A relay further behind than this many changes gets a snapshot instead of deltas (arbitrary).</summary>
    public const long MaxDeltaCatchUp = 100_000;

    /// <summary>
    /// Issued boot tickets are recorded this long (then pruned every 10 minutes, <see cref="Core.TicketService.PruneAsync"/>),
    /// except each machine's newest and the one its recorded freshness names. A ticket matters until its relay enrolls,
    /// minutes after the boot; a machine looping on refused boots asks at every round (arbitrary).
    /// </summary>
    public static readonly TimeSpan TicketRetention = TimeSpan.FromDays(7);

    /// <summary>Peer changes kept in the database log; older ones are compacted away (arbitrary).</summary>
    public const long RetainedPeerChanges = 2_000_000;

    /// <summary>Rows read from the change log per query when a relay catches up from the database.</summary>
    public const int ChangeBatch = 4096;

    /// <summary>A heartbeat line keeps idle streams alive through proxies and tells the relay the head revision.</summary>
    public static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(15);

    /// <summary>The dashboard event stream sends at most one "health" event per interval (issue 18).</summary>
    public static readonly TimeSpan HealthEventInterval = TimeSpan.FromSeconds(5);

    /// <summary>A deployed relay serves while its latest health report is younger than this (relays report every 30 s).</summary>
    public static readonly TimeSpan ServingReportAge = TimeSpan.FromMinutes(2);

    /// <summary>One health sample per location per interval (schema 11), kept for <see cref="HealthSampleRetention"/>.</summary>
    public static readonly TimeSpan HealthSampleInterval = TimeSpan.FromMinutes(1);

    /// <summary>Health samples older than this are pruned: at most 2880 rows per location.</summary>
    public static readonly TimeSpan HealthSampleRetention = TimeSpan.FromHours(48);

    /// <summary>A TLS handshake on an https:// address must finish within this time (the provisioning server's value).</summary>
    public static readonly TimeSpan TlsHandshakeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The largest notification payload sent: PostgreSQL's NOTIFY takes less than 8000 bytes.</summary>
    public const int MaxNotificationBytes = 7900;

    /// <summary>Even without notifications, each instance looks for new changes this often.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(2);

    /// <summary>Default <see cref="FleetOptions.AddressQuarantine"/>: a day, so an address names one device per day at most.</summary>
    public static readonly TimeSpan DefaultAddressQuarantine = TimeSpan.FromHours(24);

    /// <summary>Default device additions per account per <see cref="DefaultDeviceChurnWindow"/>: key rotation and new devices fit
    /// easily; with the quarantine, one account can hold back at most ~this many addresses a day (arbitrary).</summary>
    public const int DefaultDeviceAddsPerWindow = 20;
    public static readonly TimeSpan DefaultDeviceChurnWindow = TimeSpan.FromHours(24);

    /// <summary>Default proof-of-work difficulty: ~10^6 SHA-256 hashes, about a second on a phone (arbitrary).</summary>
    public const int DefaultProofOfWorkBits = 20;
    public const int MaxProofOfWorkBits = 32;

    /// <summary>A proof-of-work challenge must be solved and used within this time, once.</summary>
    public static readonly TimeSpan AccountChallengeLifetime = TimeSpan.FromMinutes(10);

    /// <summary>Vouchers: name length, uses per voucher, default lifetime.</summary>
    public const int MaxVoucherUses = 10_000;
    public const int MaxVoucherLength = 128;
    public const int MaxVoucherNameLength = 100;
    public static readonly TimeSpan DefaultVoucherLifetime = TimeSpan.FromDays(30);

    /// <summary>Connections held at once, all clients (Kestrel's limit) and per client address (arbitrary; a relay holds one or two).</summary>
    public const int DefaultMaxConnections = 10_000;
    public const int DefaultMaxConnectionsPerClient = 256;

    /// <summary>Request headers must arrive within this time (slowloris).</summary>
    public static readonly TimeSpan RequestHeadersTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Default <see cref="FleetOptions.LoginLockoutThreshold"/>: ten wrong guesses in a row lock a staff member out.</summary>
    public const int DefaultLoginLockoutThreshold = 10;
    public const int MaxLoginLockoutThreshold = 1000;

    /// <summary>
    /// Login backoff (issue 17): failures a username or a source address may have before each further one doubles the wait for
    /// the next attempt, from <see cref="LoginBackoffBase"/> up to <see cref="LoginBackoffMax"/>. A source gets more (arbitrary:
    /// several staff behind one NAT); a username's few allow for typos.
    /// </summary>
    public const int LoginFreeFailuresPerUsername = 3, LoginFreeFailuresPerSource = 10;
    public static readonly TimeSpan LoginBackoffBase = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan LoginBackoffMax = TimeSpan.FromMinutes(15);

    /// <summary>A source address's failed logins are forgotten after this long without one; a staff member's never (until a success).</summary>
    public static readonly TimeSpan LoginSourceMemory = TimeSpan.FromHours(1);

    /// <summary>Failed logins of usernames that name nobody are deleted after this long without one (they only carry backoff).</summary>
    public static readonly TimeSpan LoginUnknownUsernameMemory = TimeSpan.FromHours(24);

    /// <summary>Source addresses whose failed logins one instance remembers (in memory; arbitrary, ~100 bytes each).</summary>
    public const int MaxTrackedLoginSources = 100_000;

    public const int MaxHostnameLength = 63;
    public const int MaxReasonLength = 500;
    public const int MaxUsernameLength = 64;
    public const int MinPasswordLength = 12;
    public const int MaxPasswordLength = 1024;
    public const int MaxTokenNameLength = 100;

    /// <summary>Longer bearer strings are no token of ours (ours are ~48 characters); refused before hashing.</summary>
    public const int MaxBearerLength = 256;

    // Rollouts (issue 18).
    /// <summary>The most machines one rollout covers (arbitrary limit, may be increased).</summary>
    public const int MaxRolloutMachines = 100_000;
    public const int RolloutDefaultDrainSeconds = 30;
    /// <summary>How long a machine has to come back after its drain (and then to serve after it enrolled) before the rollout halts.</summary>
    public const int RolloutDefaultDeadlineSeconds = 600;
    /// <summary>The fleet's serving relays (deployed, plus those the rollout has out) below this share of the start's halt the rollout.</summary>
    public const int RolloutDefaultMinServingPercent = 75;
    /// <summary>How long an instance's claim to drive a rollout lasts without renewal (a dead instance's rollout moves on after it).</summary>
    public static readonly TimeSpan RolloutLease = TimeSpan.FromSeconds(15);
    /// <summary>How often the engine looks at open rollouts when nothing changed (it also wakes at every machine change).</summary>
    public static readonly TimeSpan RolloutTick = TimeSpan.FromSeconds(1);
    /// <summary>A reboot command must reach its relay within this (its expires_at); one that expired untaken is signed again (new
    /// sequence and nonce) until the machine's deadline (<see cref="FleetOptions.RebootCommandLifetime"/> changes it).</summary>
    public static readonly TimeSpan RebootCommandLifetime = TimeSpan.FromMinutes(2);
    /// <summary>How long GET /relay/v1/command waits for a command before answering 204.</summary>
    public static readonly TimeSpan RebootCommandPoll = TimeSpan.FromSeconds(25);
}

namespace Tabula.Fleet;

/// <summary>
/// A request budget in permits per minute, per source address (an IPv4 address or an IPv6 /64) and per credential (the
/// Authorization header: account number, staff or relay token; the username for login). A token bucket holds a minute's
/// worth and refills continuously. 0 means no limit on that key.
/// </summary>
public sealed record RateLimit(int PerSource, int PerCredential);

/// <summary>
/// The controller's request budgets, one per endpoint group (Api/RateLimits.cs maps groups to these). Generous for one
/// client, so clients behind one carrier-grade NAT share a source budget without noticing; tight where a request costs a
/// secret guess (login, enrollment) or a resource (accounts).
/// </summary>
public sealed record FleetRateLimits
{
    /// <summary>False: no rate limiter in the pipeline at all (benchmarks; a front end that limits instead).</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>/app/v1 with an account number (devices, me, revisions).</summary>
    public RateLimit Customer { get; init; } = new(1200, 120);

    /// <summary>POST /app/v1/accounts and its proof-of-work challenge.</summary>
    public RateLimit Accounts { get; init; } = new(10, 10);

    /// <summary>GET /app/v1/relays (anonymous; ETag'd, so apps fetch it rarely).</summary>
    public RateLimit RelayList { get; init; } = new(600, 0);

    /// <summary>POST /api/v1/login; per credential is per username.</summary>
    public RateLimit Login { get; init; } = new(30, 10);

    /// <summary>/relay/v1 enrollment nonce and enroll (per enrollment token).</summary>
    public RateLimit Enrollment { get; init; } = new(60, 60);

    /// <summary>The rest of /relay/v1 (peer stream, applied, health, config), per relay token.</summary>
    public RateLimit Relay { get; init; } = new(12000, 1200);

    /// <summary>/api/v1 for staff (CLI, dashboard), per session or API token.</summary>
    public RateLimit Staff { get; init; } = new(1200, 600);

    /// <summary>Boot tickets (/boot/v1), for endpoints that opt in with the "boot" policy.</summary>
    public RateLimit Boot { get; init; } = new(600, 60);

    /// <summary>/metrics, /dashboard.</summary>
    public RateLimit Public { get; init; } = new(240, 0);

    /// <summary>Every budget multiplied by <paramref name="factor"/> (0 stays unlimited).</summary>
    public FleetRateLimits Scaled(int factor)
    {
        static RateLimit S(RateLimit r, int f) => new(checked(r.PerSource * f), checked(r.PerCredential * f));
        return this with
        {
            Customer = S(Customer, factor), Accounts = S(Accounts, factor), RelayList = S(RelayList, factor), Login = S(Login, factor),
            Enrollment = S(Enrollment, factor), Relay = S(Relay, factor), Staff = S(Staff, factor), Boot = S(Boot, factor),
            Public = S(Public, factor),
        };
    }
}

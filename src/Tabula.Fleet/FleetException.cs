namespace Tabula.Fleet;

/// <summary>Why a fleet operation was refused. Api/ErrorMapping.cs maps each to one HTTP status.</summary>
public enum FleetError
{
    /// <summary>The request is malformed or a field is invalid.</summary>
    InvalidInput,
    /// <summary>No valid credentials.</summary>
    Unauthenticated,
    /// <summary>Valid credentials, insufficient role.</summary>
    Forbidden,
    NotFound,
    /// <summary>The key or name is already in use.</summary>
    Duplicate,
    /// <summary>The state machine does not allow this transition.</summary>
    IllegalTransition,
    /// <summary>The account has as many devices as it may have.</summary>
    DeviceLimit,
    /// <summary>Enrollment nonce unknown, expired or used before.</summary>
    ReplayedEnrollment,
    /// <summary>Enrollment signature does not verify.</summary>
    ForgedEnrollment,
    /// <summary>An address pool is exhausted.</summary>
    PoolExhausted,
    /// <summary>The machine's boot is not known fresh (freshness, issue 16): deploying it needs an audited override.</summary>
    Unfresh,
    /// <summary>A boot ticket was asked for a machine class with no current release.</summary>
    NoCurrentRelease,
    /// <summary>A boot ticket request's signature does not verify with its identity key.</summary>
    ForgedTicketRequest,
    /// <summary>Too many requests or changes in a time window; <see cref="FleetException.RetryAfter"/> says when to try again.</summary>
    RateLimited,
    /// <summary>Account creation needs a valid voucher (or a proof of work), and none was given.</summary>
    AccountCreationRefused,
    /// <summary>A body over the endpoint's own bound (smaller than the API-wide one).</summary>
    TooLarge,
    /// <summary>The fleet holds as many devices as its capacity (<see cref="FleetOptions.FleetCapacity"/>, below a relay's peer limit).</summary>
    FleetFull,
    /// <summary>A password session of an operator or admin without TOTP while it is required: it may only enroll TOTP.</summary>
    TotpRequired,
    /// <summary>Attestation is required (issue 19) and this machine's latest enrollment did not attest: it may not serve.</summary>
    NotAttested,
}

/// <summary>An expected refusal with a reason; never carries a customer key or address in its message.</summary>
public sealed class FleetException(FleetError error, string message) : Exception(message)
{
    public FleetError Error { get; } = error;

    /// <summary>For <see cref="FleetError.RateLimited"/>: when the client may try again (the Retry-After header).</summary>
    public TimeSpan? RetryAfter { get; init; }
}

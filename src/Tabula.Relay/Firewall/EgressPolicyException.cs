namespace Tabula.Relay.Firewall;

/// <summary>Why an egress configuration was refused (before anything touched the kernel).</summary>
public enum EgressPolicyError
{
    /// <summary>An interface name is empty, longer than 15 characters, or has a character Linux refuses.</summary>
    InvalidInterface,
    /// <summary>A prefix or address does not parse, has host bits set, or is of the wrong family.</summary>
    MalformedPrefix,
    /// <summary>A tunnel pool overlaps the uplink's own subnets, a management endpoint, or the other pool's addresses.</summary>
    OverlappingPool,
    /// <summary>A gateway address lies outside its pool.</summary>
    GatewayOutsidePool,
    /// <summary>A public (egress) address is not assigned to the uplink interface.</summary>
    PublicAddressNotOnUplink,
    /// <summary>The DNS port is 0.</summary>
    InvalidPort,
    /// <summary>More blocked prefixes than <see cref="EgressPolicy.MaxBlockedPrefixes"/>.</summary>
    TooManyPrefixes,
}

/// <summary>An egress configuration that cannot be applied. The detail names fields, not customer data.</summary>
public sealed class EgressPolicyException : Exception
{
    internal EgressPolicyException(EgressPolicyError reason, string detail) : base($"egress policy refused ({reason}): {detail}") =>
        Reason = reason;

    /// <summary>What was wrong.</summary>
    public EgressPolicyError Reason { get; }
}

/// <summary>Why applying a valid policy to the kernel failed.</summary>
public enum EgressFirewallError
{
    /// <summary>The kernel refused the batch; the previous ruleset is still in place (the inner exception names the message).</summary>
    KernelRefused,
    /// <summary>The ruleset read back after applying differs from the one sent.</summary>
    ReadBackMismatch,
}

/// <summary>Applying the egress ruleset failed.</summary>
public sealed class EgressFirewallException : Exception
{
    internal EgressFirewallException(EgressFirewallError reason, string detail, Exception? inner = null)
        : base($"egress firewall ({reason}): {detail}", inner) => Reason = reason;

    /// <summary>What went wrong.</summary>
    public EgressFirewallError Reason { get; }
}

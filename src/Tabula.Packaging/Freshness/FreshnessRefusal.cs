namespace Tabula.Packaging;

/// <summary>
/// Why stboot did not treat a boot as fresh (freshness design §5). <see cref="FreshnessRefusals.Name"/> is the spelling on
/// the console (<c>freshness … reason=NAME</c>), in the hand-over and in the lab's scripts; never rename one.
/// </summary>
public enum FreshnessRefusal
{
    /// <summary>ticket-unavailable: the controller could not be reached, answered an HTTP error, or the machine has no
    /// identity key to ask with. Required: wait and retry, never boot; optional: boot and say UNFRESH.</summary>
    TicketUnavailable,
    /// <summary>ticket-signature: not signed by ticket_root.pem (an unknown key, or tampered).</summary>
    TicketSignature,
    /// <summary>ticket-nonce: not this attempt's nonce (a replayed ticket).</summary>
    TicketNonce,
    /// <summary>ticket-machine: issued to another machine id.</summary>
    TicketMachine,
    /// <summary>ticket-digest: names another archive than the one verified.</summary>
    TicketDigest,
    /// <summary>below-floor: the manifest's release is below max(policy min_release, ticket min_release).</summary>
    BelowFloor,
    /// <summary>machine-class: the manifest's class is not the policy's or the ticket's.</summary>
    MachineClass,
    /// <summary>ticket-malformed: the ticket does not parse (too large, truncated, bad JSON, unknown version).</summary>
    TicketMalformed,
}

/// <summary>The console and hand-over spelling of <see cref="FreshnessRefusal"/>.</summary>
public static class FreshnessRefusals
{
    /// <summary>The kebab-case name, e.g. <c>below-floor</c>.</summary>
    public static string Name(this FreshnessRefusal refusal) => refusal switch
    {
        FreshnessRefusal.TicketUnavailable => "ticket-unavailable",
        FreshnessRefusal.TicketSignature => "ticket-signature",
        FreshnessRefusal.TicketNonce => "ticket-nonce",
        FreshnessRefusal.TicketMachine => "ticket-machine",
        FreshnessRefusal.TicketDigest => "ticket-digest",
        FreshnessRefusal.BelowFloor => "below-floor",
        FreshnessRefusal.MachineClass => "machine-class",
        FreshnessRefusal.TicketMalformed => "ticket-malformed",
        _ => throw new ArgumentOutOfRangeException(nameof(refusal)),
    };

    /// <summary>The refusal named <paramref name="name"/>, or null.</summary>
    public static FreshnessRefusal? Parse(string? name)
    {
        foreach (var refusal in Enum.GetValues<FreshnessRefusal>())
            if (refusal.Name() == name)
                return refusal;
        return null;
    }
}

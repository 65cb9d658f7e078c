using Tabula.Packaging;

namespace Tabula.Boot.Freshness;

/// <summary>What stboot does with a verified package under a freshness policy.</summary>
/// <param name="Boot">Go on to kexec.</param>
/// <param name="Fresh">A valid ticket named this archive.</param>
/// <param name="Reason">Why not fresh (a refusal, or ticket-unavailable under an optional policy), else null.</param>
/// <param name="Detail">One line for the console: name=value fields, no secrets.</param>
/// <param name="Ticket">The ticket that was checked, or null.</param>
internal sealed record FreshnessVerdict(bool Boot, bool Fresh, FreshnessRefusal? Reason, string Detail, BootTicket? Ticket);

/// <summary>
/// The freshness decision (freshness design §5), pure: only called after the package signatures verified. With a ticket:
/// it must parse, and an answer over the cap or empty is no ticket either (ticket-malformed), be signed by ticket_root.pem (ticket-signature), carry this attempt's nonce
/// (ticket-nonce), this machine's id (ticket-machine) and the verified archive's digest (ticket-digest). Then, with or
/// without a ticket, the floors: the manifest's release is at least max(policy min_release, ticket min_release)
/// (below-floor) and its class is the policy's and the ticket's (machine-class). No ticket: required refuses
/// (ticket-unavailable), optional boots unfresh. A ticket can only choose among packages the signers signed.
/// </summary>
internal static class FreshnessDecision
{
    public static FreshnessVerdict Decide(FreshnessPolicy policy, ReadOnlySpan<byte> ticketRoot, FreshnessRound round,
        Sha256Digest archive, Manifest manifest)
    {
        BootTicket? ticket = null;
        if (round.NotATicket is { } answer)   // a 200 over the cap or empty: a bad ticket, not an unreachable controller
            return Refuse(FreshnessRefusal.TicketMalformed, $"error={answer.Reason} detail=\"{OneLine(answer.Message)}\"", null);
        if (round.Ticket is { } bytes)
        {
            try { ticket = BootTicket.Parse(bytes); }
            catch (BootTicketException e)
            {
                return Refuse(FreshnessRefusal.TicketMalformed, $"error={e.Reason} detail=\"{OneLine(e.Message)}\"", null);
            }
            var payload = ticket.Payload;
            if (!ticket.VerifySignature(ticketRoot))
                return Refuse(FreshnessRefusal.TicketSignature, "detail=\"not signed by ticket_root.pem (an unknown key, or tampered)\"", ticket);
            if (!payload.HasNonce(round.Nonce))
                return Refuse(FreshnessRefusal.TicketNonce, $"issued_at={payload.IssuedAt} detail=\"not this attempt's nonce (replayed)\"", ticket);
            if (round.MachineId is null || payload.MachineId != round.MachineId)
                return Refuse(FreshnessRefusal.TicketMachine, $"ticket_machine={payload.MachineId} machine={round.MachineId ?? "none"}", ticket);
            if (payload.PackageSha256 != archive)
                return Refuse(FreshnessRefusal.TicketDigest, $"ticket_sha256={payload.PackageSha256.Hex} ospkg_sha256={archive.Hex}", ticket);
        }
        long ticketFloor = ticket?.Payload.MinRelease ?? 0;
        long floor = Math.Max(policy.MinRelease, ticketFloor);
        if (manifest.Release < floor)
            return Refuse(FreshnessRefusal.BelowFloor,
                $"release={manifest.Release} floor={floor} policy_min_release={policy.MinRelease} ticket_min_release={(ticket is null ? "none" : ticketFloor)} ospkg_sha256={archive.Hex}", ticket);
        string packageClass = manifest.MachineClass ?? "none";
        if (policy.MachineClass is { } policyClass && manifest.MachineClass != policyClass)
            return Refuse(FreshnessRefusal.MachineClass, $"class={packageClass} policy_class={policyClass}", ticket);
        if (ticket?.Payload.MachineClass is { } ticketClass && manifest.MachineClass != ticketClass)
            return Refuse(FreshnessRefusal.MachineClass, $"class={packageClass} ticket_class={ticketClass}", ticket);
        if (ticket is null)
        {
            string detail = $"detail=\"{OneLine(round.Unavailable ?? "no ticket")}\"";
            return policy.Mode == FreshnessMode.Optional
                ? new FreshnessVerdict(true, false, FreshnessRefusal.TicketUnavailable, detail, null)
                : Refuse(FreshnessRefusal.TicketUnavailable, detail, null);
        }
        return new FreshnessVerdict(true, true, null,
            $"release={manifest.Release} class={packageClass} floor={floor} issued_at={ticket.Payload.IssuedAt} ospkg_sha256={archive.Hex}", ticket);
    }

    static FreshnessVerdict Refuse(FreshnessRefusal reason, string detail, BootTicket? ticket) => new(false, false, reason, detail, ticket);

    internal static string OneLine(string text) => text.ReplaceLineEndings(" | ").Replace('"', '\'');
}

using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Tabula.Fleet.Protocol;
using Tabula.Fleet.Security;
using Tabula.Fleet.Storage;
using Tabula.Packaging;

namespace Tabula.Fleet.Core;

/// <summary>
/// Boot tickets (freshness, issue 16; docs/fleet.md "Freshness"): stboot asks at every boot attempt with a fresh nonce and a
/// request signed by the machine's identity key; the controller answers with a ticket signed by its ticket key naming the
/// package the machine's class boots now and the class floor. Every issued ticket is recorded (machine id, SHA-256 of the
/// nonce, digest, floor, time), so what a relay reports at enrollment can be checked against it
/// (<see cref="EvaluateAsync"/>).
/// </summary>
public sealed class TicketService(IStore store, TicketKey key, TimeProvider time, FleetMetrics metrics, ILogger<TicketService> logger)
{
    /// <summary>
    /// Issues a ticket for a request's bytes. Refusals: malformed (400), a signature that does not verify with the request's
    /// identity key (401 forged_ticket_request), a retired machine (403), a class with no current release (409).
    /// </summary>
    public async Task<byte[]> IssueAsync(ReadOnlyMemory<byte> body, CancellationToken ct)
    {
        TicketRequest request;
        try { request = TicketRequest.Parse(body.Span); }
        catch (BootTicketException e) { throw new FleetException(FleetError.InvalidInput, $"ticket request: {e.Message} ({e.Reason})"); }
        try
        {
            if (!request.Verify())
            {
                metrics.TicketsRefused.Add(1);
                throw new FleetException(FleetError.ForgedTicketRequest, "the ticket request's signature does not verify with its identity_key");
            }
            string machineId = request.MachineId;
            byte[] nonceHash = SHA256.HashData(request.Nonce);
            var (ticket, release) = await store.WriteAsync(async tx =>
            {
                var machine = await tx.GetMachineAsync(machineId, forUpdate: false);
                if (machine is { State: MachineState.Retired })
                    throw new FleetException(FleetError.Forbidden, "this machine is retired: it gets no boot ticket");
                // A policy that names no class: the class of the package the machine last enrolled with, if staff named it.
                string? machineClass = request.MachineClass
                                       ?? (machine is null ? null : (await tx.GetPackageReleaseAsync(machine.PackageDigest))?.MachineClass);
                if (machineClass is null)
                    throw new FleetException(FleetError.NoCurrentRelease, "the ticket request names no machine class and the controller knows none for this machine");
                var releaseClass = await tx.GetReleaseClassAsync(machineClass, forUpdate: false);
                // A rollout (issue 18) pins each of its machines' package: the target once its turn came, the one it runs before,
                // so a machine that reboots outside the rollout keeps its release and a canary really is one machine.
                string? pinned = await tx.GetMachineTargetAsync(machineId);
                if ((pinned ?? releaseClass?.CurrentDigest) is not { } digest)
                    throw new FleetException(FleetError.NoCurrentRelease,
                        $"machine class {machineClass} has no current release (tabula fleet releases set-current)");
                long current = pinned is null ? releaseClass!.CurrentRelease ?? 0 : (await tx.GetPackageReleaseAsync(pinned))?.Release ?? 0;
                long floor = releaseClass?.MinRelease ?? 0;
                var payload = new BootTicketPayload(machineId, request.Nonce.ToArray(), Sha256Digest.Parse(digest, "current digest"),
                    floor, machineClass, time.GetUtcNow().ToUnixTimeSeconds());
                byte[] signed = key.SignTicket(payload);
                await tx.InsertTicketAsync(new IssuedTicket(machineId, nonceHash, digest, machineClass, floor, tx.Now));
                return (signed, current);
            }, ct);
            metrics.TicketsIssued.Add(1);
            Log.TicketIssued(logger, machineId, release);
            return ticket;
        }
        catch (FleetException e) when (e.Error is FleetError.Forbidden or FleetError.NoCurrentRelease)
        {
            metrics.TicketsRefused.Add(1);
            throw;
        }
        finally { request.Clear(); }
    }

    /// <summary>
    /// Deletes ticket records older than <see cref="FleetLimits.TicketRetention"/>, keeping each machine's newest and the one
    /// its recorded freshness names (<see cref="IReleaseTx.PruneTicketsAsync"/>), so a relay's re-enrollment within the same
    /// boot still finds its ticket. Run by the controller's background loop every 10 minutes (any instance: the delete is
    /// idempotent). Returns how many went.
    /// </summary>
    public async Task<int> PruneAsync(CancellationToken ct)
    {
        int removed = await store.WriteAsync(tx => tx.PruneTicketsAsync(tx.Now - (long)FleetLimits.TicketRetention.TotalMilliseconds), ct);
        if (removed > 0) Log.TicketsPruned(logger, removed);
        return removed;
    }

    /// <summary>Largest base64 text of a reported ticket (4 KiB of ticket; arbitrary slack for padding).</summary>
    private const int MaxReportedTicketChars = (Limits.MaxBootTicketBytes + 2) / 3 * 4 + 4;

    /// <summary>
    /// What a relay's enrollment report says about its boot, checked: the ticket verifies with this controller's key, names
    /// this machine and the package the relay reports, and was issued (recorded); stboot called the boot fresh. The reason
    /// of an unfresh result is a stable name (ticket-malformed, ticket-signature, ticket-machine, ticket-digest,
    /// ticket-unknown, no-ticket, or stboot's own reason such as ticket-unavailable).
    /// </summary>
    internal static async Task<MachineFreshness> EvaluateAsync(IReleaseTx tx, TicketKey key, string machineId, string packageDigest,
        FreshnessReport? report)
    {
        if (report is null) return new MachineFreshness(machineId, FreshnessStatus.Unreported, null, 0, null, null, tx.Now);
        string? machineClass = FreshnessNames.IsMachineClass(report.MachineClass) ? report.MachineClass : null;
        long release = report.Release is >= 0 and <= FreshnessNames.MaxRelease ? report.Release : 0;
        MachineFreshness Unfresh(string reason, long? issuedAt = null) =>
            new(machineId, FreshnessStatus.Unfresh, reason, release, machineClass, issuedAt, tx.Now);

        if (report.Ticket is null) return Unfresh(ReasonName(report.Reason) ?? "no-ticket");
        if (report.Ticket.Length > MaxReportedTicketChars) return Unfresh("ticket-malformed");
        BootTicket ticket;
        try { ticket = BootTicket.Parse(Convert.FromBase64String(report.Ticket)); }
        catch (Exception e) when (e is FormatException or BootTicketException) { return Unfresh("ticket-malformed"); }
        if (!ticket.VerifySignature(key.PublicKey)) return Unfresh("ticket-signature");
        var payload = ticket.Payload;
        if (payload.MachineId != machineId) return Unfresh("ticket-machine");
        if (payload.PackageSha256.Hex != packageDigest) return Unfresh("ticket-digest");
        machineClass = payload.MachineClass ?? machineClass;   // the controller's own word, signed
        long? issuedAt = await tx.FindTicketAsync(machineId, SHA256.HashData(payload.Nonce), packageDigest);
        if (issuedAt is null) return Unfresh("ticket-unknown");
        if (!report.Fresh) return Unfresh(ReasonName(report.Reason) ?? "relay-unfresh", issuedAt);
        return new MachineFreshness(machineId, FreshnessStatus.Fresh, null, release, machineClass, issuedAt, tx.Now);
    }

    /// <summary>stboot's reason names are kebab-case words; anything else is not echoed into views and the audit trail.</summary>
    private static string? ReasonName(string? reason) =>
        reason is { Length: > 0 and <= 64 } && reason.All(c => c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-') ? reason
        : reason is null ? null : "relay-unfresh";
}

using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Tabula.Fleet.Protocol;
using Tabula.Fleet.Security;
using Tabula.Fleet.Storage;
using Tabula.Packaging.Crypto;

namespace Tabula.Fleet.Core;

/// <summary>
/// Relay enrollment: enrollment tokens, the packages allowed to re-enroll without staff, single-use nonces, and the
/// signed enrollment itself (docs/fleet.md "Enrollment").
/// </summary>
public sealed class EnrollmentService(IStore store, MachineEvents machineEvents, FleetMetrics metrics, TimeProvider time,
    TicketKey ticketKey, AttestationService attestation, ILogger<EnrollmentService> logger)
{
    public async Task<string> CreateEnrollmentTokenAsync(string actor, string name, CancellationToken ct) =>
        (await CreateEnrollmentTokenAsync(actor, new EnrollmentTokenOptions(name), ct)).Token;

    /// <summary>What an enrollment token may do: <c>Expires</c> as <see cref="TokenLifetime"/> reads it (90 days by default),
    /// <c>SingleUse</c> (spent by its first enrollment), <c>Machine</c> (only this machine id may enroll with it).</summary>
    public sealed record EnrollmentTokenOptions(string Name, string? Expires = null, bool SingleUse = false, string? Machine = null);

    public async Task<(string Token, TokenInfo Info)> CreateEnrollmentTokenAsync(string actor, EnrollmentTokenOptions options, CancellationToken ct)
    {
        if (options.Name.Length is 0 or > FleetLimits.MaxTokenNameLength || options.Name.Any(char.IsControl))
            throw new FleetException(FleetError.InvalidInput, $"token names are 1-{FleetLimits.MaxTokenNameLength} printable characters");
        if (options.Machine is { } m && !Tabula.Packaging.MachineIdentity.IsMachineId(m))
            throw new FleetException(FleetError.InvalidInput, "a machine id is 32 lowercase hex characters (tabula fleet machines list)");
        long? expiresAt = TokenLifetime.Parse(options.Expires, time.GetUtcNow(), FleetLimits.DefaultTokenLifetime);
        string token = Secrets.NewToken("tfe");
        var info = await Write(async tx =>
        {
            long id = await tx.InsertEnrollmentTokenAsync(Secrets.HashToken(token), options.Name, actor, expiresAt, options.SingleUse, options.Machine);
            var created = TokenService.Describe(new EnrollmentToken(id, options.Name, actor, tx.Now, expiresAt, options.SingleUse, null, options.Machine, null));
            await tx.AuditAsync(actor, "enrollment-token.create", created.Id, null,
                $"name={options.Name}, expires={StaffService.Describe(expiresAt)}, single_use={(options.SingleUse ? "yes" : "no")}, machine={options.Machine ?? "any"}");
            return created;
        }, ct);
        return (token, info);
    }

    public Task AllowPackageAsync(string actor, string digest, string? reason, CancellationToken ct)
    {
        if (!Enrollment.IsDigest(digest))
            throw new FleetException(FleetError.InvalidInput, "a package digest is 64 lowercase hex characters (SHA-256)");
        return Write(async tx =>
        {
            await tx.AllowPackageAsync(digest, actor);
            await tx.AuditAsync(actor, "package.allow", digest, reason, null);
            return 0;
        }, ct);
    }

    public Task<IReadOnlyList<string>> AllowedPackagesAsync(CancellationToken ct) => Read(tx => tx.AllowedPackagesAsync(), ct);

    /// <summary>
    /// Withdraws an allowed package (audited, with the reason): machines that boot it again wait for staff, and deployed
    /// machines running it drain now (each drain audited as the same staff member's), in one transaction. Returns the
    /// drained machines' ids.
    /// </summary>
    public async Task<IReadOnlyList<string>> WithdrawPackageAsync(string actor, string digest, string? reason, CancellationToken ct)
    {
        if (!Enrollment.IsDigest(digest))
            throw new FleetException(FleetError.InvalidInput, "a package digest is 64 lowercase hex characters (SHA-256)");
        if (string.IsNullOrWhiteSpace(reason) || reason.Length > FleetLimits.MaxReasonLength)
            throw new FleetException(FleetError.InvalidInput, $"withdrawing a package needs a reason of 1-{FleetLimits.MaxReasonLength} characters");
        var drained = await Write(async tx =>
        {
            if (!await tx.WithdrawPackageAsync(digest))
                throw new FleetException(FleetError.NotFound, "this package digest is not allowed");
            await tx.AuditAsync(actor, "package.withdraw", digest, reason, null);
            var ids = new List<string>();
            foreach (var machine in await tx.MachinesRunningAsync(digest, MachineState.Deployed))
            {
                var to = MachineLifecycle.Apply(machine, MachineLifecycle.Action.Drain);
                await tx.UpdateMachineAsync(machine with { State = to, PreviousState = null, UpdatedAt = tx.Now });
                await tx.AuditAsync(actor, "machine.drain", machine.Id, reason, $"{machine.State.Name()} -> {to.Name()}, package withdrawn");
                ids.Add(machine.Id);
            }
            await tx.NotifyAsync("machines");
            return ids;
        }, ct);
        machineEvents.Changed();
        foreach (string id in drained) Log.MachineTransition(logger, id, "drain (package withdrawn)", MachineState.Draining.Name(), actor);
        return drained;
    }

    /// <summary>
    /// The enrollment token's row if it may enroll <paramref name="machineId"/> now (null at the nonce, before the machine
    /// is named): known, unexpired, not spent if single-use, and bound to no machine or this one.
    /// </summary>
    private static async Task<EnrollmentToken> RequireEnrollmentTokenAsync(IEnrollmentTx tx, string? token, string? machineId)
    {
        var row = string.IsNullOrEmpty(token) || token.Length > FleetLimits.MaxBearerLength ? null
            : await tx.GetEnrollmentTokenAsync(Secrets.HashToken(token));
        string? refusal = row switch
        {
            null => "a valid enrollment token is required",
            { ExpiresAt: { } e } when e <= tx.Now => "this enrollment token has expired",
            { SingleUse: true, UsedAt: not null } => "this enrollment token was single-use and has been used",
            { Machine: { } bound } when machineId is not null && bound != machineId => "this enrollment token is bound to another machine",
            _ => null,
        };
        return refusal is null ? row! : throw new FleetException(FleetError.Unauthenticated, refusal);
    }

    public async Task<(byte[] Nonce, DateTimeOffset Expires)> NewEnrollmentNonceAsync(string? enrollmentToken, CancellationToken ct)
    {
        var (nonce, expires, _) = await NewEnrollmentNonceAsync(enrollmentToken, null, ct);
        return (nonce, expires);
    }

    /// <summary>
    /// A nonce; when the relay names its TPM keys (issue 19), with the credential-activation challenge for its AK, stored with
    /// the nonce and answered in the enrollment.
    /// </summary>
    public async Task<(byte[] Nonce, DateTimeOffset Expires, CredentialChallenge? Challenge)> NewEnrollmentNonceAsync(string? enrollmentToken,
        AttestationKeys? keys, CancellationToken ct)
    {
        byte[] nonce = RandomNumberGenerator.GetBytes(32);
        var expires = time.GetUtcNow() + FleetLimits.EnrollmentNonceLifetime;
        var challenge = attestation.MakeChallenge(keys, nonce, expires);
        await store.WriteAsync(async tx =>
        {
            await RequireEnrollmentTokenAsync(tx, enrollmentToken, null);
            await tx.InsertNonceAsync(nonce, expires.ToUnixTimeMilliseconds());
            if (challenge is { Row: var row }) await tx.InsertAttestationChallengeAsync(row);
            return 0;
        }, ct);
        return (nonce, expires, challenge?.Wire);
    }

    /// <summary>An enrollment as received; <c>Freshness</c> is what the relay reports about its boot (issue 16), null from an older agent.</summary>
    public sealed record EnrollRequest(byte[] IdentityKey, byte[] WireGuardKey, string PackageDigest, byte[] Nonce, byte[] Signature,
        FreshnessReport? Freshness = null, AttestationEvidence? Attestation = null);

    /// <summary>
    /// Enrolls a booted machine. Order matters: the token, then the nonce (consumed even if the signature
    /// then fails, so a forged attempt also burns it), then the signature. Returns a fresh relay token;
    /// the previous boot's token stops working.
    /// </summary>
    public async Task<(Machine Machine, string RelayToken)> EnrollAsync(string? enrollmentToken, EnrollRequest request, CancellationToken ct)
    {
        var (machine, token, _) = await EnrollAttestedAsync(enrollmentToken, request, ct);
        return (machine, token);
    }

    /// <summary><see cref="EnrollAsync"/>, with the machine's attestation record as this enrollment left it (issue 19).</summary>
    public async Task<(Machine Machine, string RelayToken, MachineAttestation Attestation)> EnrollAttestedAsync(string? enrollmentToken,
        EnrollRequest request, CancellationToken ct)
    {
        if (request.IdentityKey.Length != Ed25519.PublicKeySize)
            throw new FleetException(FleetError.InvalidInput, "identity_key must be a 32-byte Ed25519 public key");
        if (!Enrollment.IsDigest(request.PackageDigest))
            throw new FleetException(FleetError.InvalidInput, "package_digest must be 64 lowercase hex characters (SHA-256)");
        string relayToken = Secrets.NewToken("tfr");
        string id = Enrollment.MachineId(request.IdentityKey);
        AttestationChallenge? challenge = null;
        bool consumed = await store.WriteAsync(async tx =>
        {
            await RequireEnrollmentTokenAsync(tx, enrollmentToken, id);
            // The challenge goes with its nonce, whatever follows: it is answered once.
            challenge = await tx.TakeAttestationChallengeAsync(request.Nonce);
            return await tx.ConsumeNonceAsync(request.Nonce);
        }, ct);
        if (!consumed) throw new FleetException(FleetError.ReplayedEnrollment, "the enrollment nonce is unknown, expired or already used");
        if (!Ed25519.Verify(request.IdentityKey, Enrollment.Message(request.Nonce, request.WireGuardKey, request.PackageDigest), request.Signature))
            throw new FleetException(FleetError.ForgedEnrollment, "the enrollment signature does not verify with identity_key");

        // The whole store: the freshness check reads issued tickets and release classes in the same transaction.
        MachineFreshness? freshness = null;
        MachineAttestation? attested = null;
        var machine = await store.WriteAsync(async tx =>
        {
            // Again, in the transaction that enrolls: a token revoked meanwhile is refused, and a single-use one is spent
            // here, after the signature verified (a forged attempt cannot burn it), by exactly one of concurrent enrollments.
            var token = await RequireEnrollmentTokenAsync(tx, enrollmentToken, id);
            if (!await tx.UseEnrollmentTokenAsync(token.Id, token.SingleUse, id))
                throw new FleetException(FleetError.Unauthenticated, "this enrollment token was single-use and has been used");
            bool allowed = await tx.IsPackageAllowedAsync(request.PackageDigest);
            var existing = await tx.GetMachineAsync(id, forUpdate: true);
            Machine result;
            if (existing is null)
            {
                result = new Machine(id, MachineState.Awaiting, null, request.IdentityKey, request.WireGuardKey, request.PackageDigest,
                    null, 0, tx.Now, tx.Now);
                await tx.InsertMachineAsync(result, Secrets.HashToken(relayToken));
                freshness = await TicketService.EvaluateAsync(tx, ticketKey, id, request.PackageDigest, request.Freshness);
                await tx.SaveMachineFreshnessAsync(freshness);
                attested = await AttestAsync(tx, id, request, challenge);
                await tx.AuditAsync("machine:" + id, "machine.enroll", id, null, "new, awaiting" + Describe(freshness) + Describe(attested));
            }
            else
            {
                freshness = await TicketService.EvaluateAsync(tx, ticketKey, id, request.PackageDigest, request.Freshness);
                await tx.SaveMachineFreshnessAsync(freshness);
                attested = await AttestAsync(tx, id, request, challenge);
                // An unfresh boot (or one below its class floor) does not keep its state: it waits for staff like an unknown package.
                // So does one that did not attest when attestation is required (issue 19).
                bool fresh = await ReleaseService.WhyNotDeployableAsync(tx, id, request.PackageDigest) is null;
                bool mayServe = attested.Status == AttestationStatus.Attested || attestation.Policy == AttestationPolicy.Optional;
                var (state, previous) = MachineLifecycle.OnEnrollment(existing, allowed && fresh && mayServe);
                result = existing with
                {
                    State = state, PreviousState = previous, WireGuardKey = request.WireGuardKey, PackageDigest = request.PackageDigest,
                    EnrolledAt = tx.Now, UpdatedAt = tx.Now,
                };
                await tx.UpdateMachineAsync(result);
                await tx.SetRelayTokenAsync(id, Secrets.HashToken(relayToken));
                await tx.AuditAsync("machine:" + id, "machine.enroll", id, null,
                    $"{existing.State.Name()} -> {state.Name()}, package {(allowed ? "allowed" : "not allowed")}" + Describe(freshness) + Describe(attested));
            }
            await tx.NotifyAsync("machines");
            return result;
        }, ct);
        metrics.Enrollments.Add(1);
        machineEvents.Changed();
        Log.MachineEnrolled(logger, machine.Id, machine.State.Name());
        if (freshness is not null) Log.MachineFreshness(logger, machine.Id, freshness.Status.Name(), freshness.Reason);
        Log.MachineAttestation(logger, machine.Id, attested!.Status.Name(), attested.FailedStep, attested.Detail);
        return (machine, relayToken, attested);
    }

    /// <summary>Checks the enrollment's evidence and stores the verdict (schema 12).</summary>
    private async Task<MachineAttestation> AttestAsync(IStoreTx tx, string id, EnrollRequest request, AttestationChallenge? challenge)
    {
        var (record, _) = await attestation.EvaluateAsync(tx, id, request.Nonce, request.WireGuardKey, request.PackageDigest, request.Attestation, challenge);
        await tx.SaveMachineAttestationAsync(record);
        return record;
    }

    private static string Describe(MachineAttestation a) =>
        $", attestation {a.Status.Name()}" + (a.FailedStep is { } step ? $" at {step}" : "") + (a.Release > 0 ? $", attested release {a.Release}" : "");

    private static string Describe(MachineFreshness f) =>
        $", freshness {f.Status.Name()}" + (f.Reason is { } why ? $" ({why})" : "") + (f.Release > 0 ? $", release {f.Release}" : "");

    // Transactions through this service's slice of the store only.
    private Task<T> Write<T>(Func<IEnrollmentTx, Task<T>> work, CancellationToken ct) => store.WriteAsync(tx => work(tx), ct);
    private Task<T> Read<T>(Func<IEnrollmentTx, Task<T>> work, CancellationToken ct) => store.ReadAsync(tx => work(tx), ct);
}

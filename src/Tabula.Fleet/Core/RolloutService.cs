using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Tabula.Fleet.Protocol;
using Tabula.Fleet.Security;
using Tabula.Fleet.Storage;

namespace Tabula.Fleet.Core;

/// <summary>
/// Rollouts (issue 18; docs/fleet.md "Rollouts"): staff start, pause, resume and abort them; <see cref="AdvanceAsync"/> moves one
/// rollout forward by what the database says now, in one transaction under the rollout's row lock and lease, so any instance can
/// drive it and a restarted controller carries on where the last one stopped. Each machine: drained (listed inactive) and sent
/// a signed reboot command (<see cref="RebootCommand"/>); after the drain it reboots into stboot, which fetches what its ticket
/// names (this machine's pinned target); it enrolls again on the target digest, fresh, and is deployed again; it is done once
/// its relay reports the peer set applied. The rollout halts by itself when a machine does not come back within the deadline,
/// comes back on another digest or unfresh, or when the fleet's serving relays drop below the threshold, recording why.
/// Every step is audited in the transaction that makes it.
/// </summary>
public sealed class RolloutService(IStore store, TicketKey commandKey, MachineEvents machineEvents, RolloutSettings settings, ILogger<RolloutService> logger)
{
    /// <summary>This instance's name for rollout leases.</summary>
    public string Owner { get; } = "controller-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));

    /// <summary>What staff ask for; null options take their defaults (<see cref="FleetLimits"/>).</summary>
    public sealed record StartRequest(string? Channel, long? Release, string? Digest, int? Canary, int? Batch, int? MaxUnavailablePercent,
        int? DrainSeconds, int? PerLocationMin, int? DeadlineSeconds, int? MinServingPercent, string? Reason);

    public async Task<(Rollout Rollout, IReadOnlyList<RolloutMachine> Machines)> StartAsync(string actor, StartRequest request, CancellationToken ct)
    {
        string channel = request.Channel ?? "";
        if (channel.Length is 0 or > 64 || !channel.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '_' or '.'))
            throw new FleetException(FleetError.InvalidInput, "channel is 1-64 characters of [a-z0-9._-] (the provisioning channel the machines boot from)");
        if (request.Release is null == string.IsNullOrEmpty(request.Digest))
            throw new FleetException(FleetError.InvalidInput, "name the target with release or digest (one of them)");
        if (request.Digest is { Length: > 0 } d && !Enrollment.IsDigest(d))
            throw new FleetException(FleetError.InvalidInput, "a package digest is 64 lowercase hex characters (SHA-256)");
        if (request.Release is < 1 or > FreshnessNames.MaxRelease) throw new FleetException(FleetError.InvalidInput, $"release is 1..{FreshnessNames.MaxRelease}");
        if (request.Batch is not null && request.MaxUnavailablePercent is not null)
            throw new FleetException(FleetError.InvalidInput, "give batch or max_unavailable, not both");
        int canary = Bounded(request.Canary ?? 1, 0, FleetLimits.MaxRolloutMachines, "canary");
        int? batch = request.Batch is { } b ? Bounded(b, 1, FleetLimits.MaxRolloutMachines, "batch") : null;
        int? maxUnavailable = request.MaxUnavailablePercent is { } p ? Bounded(p, 1, 100, "max_unavailable (percent)") : null;
        int drain = Bounded(request.DrainSeconds ?? FleetLimits.RolloutDefaultDrainSeconds, 0, RebootCommandPayload.MaxDrainSeconds, "drain_seconds");
        int perLocationMin = Bounded(request.PerLocationMin ?? 0, 0, FleetLimits.MaxRolloutMachines, "per_location_min");
        int deadline = Bounded(request.DeadlineSeconds ?? FleetLimits.RolloutDefaultDeadlineSeconds, 1, 86_400, "deadline_seconds");
        int minServing = Bounded(request.MinServingPercent ?? FleetLimits.RolloutDefaultMinServingPercent, 0, 100, "min_serving_percent");
        ReleaseService.ValidateReason(request.Reason, required: true);

        var started = await store.WriteAsync(async tx =>
        {
            if (await tx.LatestRolloutAsync() is { Final: false } open)
                throw new FleetException(FleetError.IllegalTransition,
                    $"rollout {open.Id} is {open.State.Name()}: abort it (or let it complete) before starting another");
            string digest;
            PackageRelease? named;
            if (request.Release is { } release)
            {
                var matches = (await tx.ListPackageReleasesAsync()).Where(r => r.Release == release).ToList();
                if (matches.Count == 0)
                    throw new FleetException(FleetError.NotFound, $"no package is named release {release} (tabula fleet releases set-current names one; or give --digest)");
                if (matches.Count > 1)
                    throw new FleetException(FleetError.InvalidInput, $"release {release} names packages of several classes ({string.Join(", ", matches.Select(m => m.MachineClass))}); give --digest");
                named = matches[0];
                digest = named.Digest;
            }
            else
            {
                digest = request.Digest!;
                named = await tx.GetPackageReleaseAsync(digest);
            }
            if (!await tx.IsPackageAllowedAsync(digest))
                throw new FleetException(FleetError.IllegalTransition,
                    $"package {digest[..12]}… is not allowed: its machines would wait for staff after the reboot (tabula fleet packages allow {digest})");
            var machines = await tx.ListMachinesAsync(null);
            var described = ReleaseService.Describe(machines, await tx.ListReleaseClassesAsync(), await tx.ListPackageReleasesAsync(),
                await tx.ListMachineFreshnessAsync());
            var scope = machines
                .Where(m => m.State == MachineState.Deployed && m.PackageDigest != digest)
                .Where(m => named is null || described[m.Id].MachineClass is null || described[m.Id].MachineClass == named.MachineClass)
                .OrderBy(m => Location(m), StringComparer.Ordinal).ThenBy(m => m.Placement?.Hostname, StringComparer.Ordinal).ThenBy(m => m.Id, StringComparer.Ordinal)
                .ToList();
            if (scope.Count == 0)
                throw new FleetException(FleetError.IllegalTransition, $"no deployed machine needs package {digest[..12]}…: nothing to roll");
            if (scope.Count > FleetLimits.MaxRolloutMachines)
                throw new FleetException(FleetError.InvalidInput, $"a rollout covers at most {FleetLimits.MaxRolloutMachines} machines");
            int baseline = machines.Count(m => m.State == MachineState.Deployed);
            var rollout = new Rollout(0, channel, named?.Release ?? request.Release, digest, named?.MachineClass, RolloutState.Running, canary,
                batch, maxUnavailable, drain, perLocationMin, deadline, minServing, baseline, actor, tx.Now, tx.Now, null);
            long id = await tx.InsertRolloutAsync(rollout);
            rollout = rollout with { Id = id };
            var rows = new List<RolloutMachine>();
            foreach (var (m, i) in scope.Select((m, i) => (m, i)))
            {
                var row = new RolloutMachine(id, m.Id, i, m.Placement?.Hostname, Location(m), RolloutStep.Pending, null, null, m.PackageDigest, null, null);
                await tx.InsertRolloutMachineAsync(row);
                // Until its turn, a machine's tickets name what it runs: a reboot outside the rollout keeps its release.
                await tx.SetMachineTargetAsync(m.Id, m.PackageDigest, id);
                rows.Add(row);
            }
            await tx.AuditAsync(actor, "rollout.start", $"rollout {id}", request.Reason,
                $"channel {channel}, {Describe(rollout)}, {rows.Count} machines");
            await tx.NotifyAsync("machines");
            return (rollout, (IReadOnlyList<RolloutMachine>)rows);
        }, ct);
        machineEvents.Changed();
        Log.Rollout(logger, started.rollout.Id, $"started by {actor}: {Describe(started.rollout)}, {started.Item2.Count} machines");
        return started;
    }

    public Task<(Rollout Rollout, IReadOnlyList<RolloutMachine> Machines)?> LatestAsync(CancellationToken ct) =>
        store.ReadAsync<(Rollout, IReadOnlyList<RolloutMachine>)?>(async tx =>
            await tx.LatestRolloutAsync() is { } r ? (r, await tx.ListRolloutMachinesAsync(r.Id)) : null, ct);

    /// <summary>The action of staff on the latest rollout: pause (running → paused), resume (paused or halted → running), abort.</summary>
    public enum StaffAction { Pause, Resume, Abort }

    /// <summary>Acts on rollout <paramref name="id"/> (null: the latest); an id that is not the latest is refused (409).</summary>
    public async Task<(Rollout Rollout, IReadOnlyList<RolloutMachine> Machines)> ActAsync(string actor, StaffAction action, string? reason, long? id,
        CancellationToken ct)
    {
        ReleaseService.ValidateReason(reason, required: true);
        var result = await store.WriteAsync(async tx =>
        {
            var latest = await tx.LatestRolloutAsync() ?? throw new FleetException(FleetError.NotFound, "no rollout has been started");
            if (id is { } named && named != latest.Id)
                throw await tx.GetRolloutAsync(named, forUpdate: false) is null
                    ? new FleetException(FleetError.NotFound, $"no rollout {named}")
                    : new FleetException(FleetError.IllegalTransition, $"rollout {named} is not the latest ({latest.Id}): only the latest can be {ActionName(action)}d");
            var r = (await tx.GetRolloutAsync(latest.Id, forUpdate: true))!;
            var to = (action, r.State) switch
            {
                (StaffAction.Pause, RolloutState.Running) => RolloutState.Paused,
                (StaffAction.Resume, RolloutState.Paused or RolloutState.Halted) => RolloutState.Running,
                (StaffAction.Abort, RolloutState.Running or RolloutState.Paused or RolloutState.Halted) => RolloutState.Aborted,
                _ => throw new FleetException(FleetError.IllegalTransition, $"rollout {r.Id} is {r.State.Name()}: it cannot be {ActionName(action)}d"),
            };
            var next = r with { State = to, HaltReason = to == RolloutState.Running ? null : r.HaltReason, UpdatedAt = tx.Now };
            await tx.UpdateRolloutAsync(next);
            await tx.AuditAsync(actor, "rollout." + ActionName(action), $"rollout {r.Id}", reason,
                $"{r.State.Name()} -> {to.Name()}" + (r.HaltReason is { } why && action == StaffAction.Resume ? $" (was halted: {why})" : ""));
            await tx.NotifyAsync("machines");
            return (next, await tx.ListRolloutMachinesAsync(r.Id));
        }, ct);
        machineEvents.Changed();
        Log.Rollout(logger, result.next.Id, $"{ActionName(action)}d by {actor}");
        return result;
    }

    private static string ActionName(StaffAction action) => action switch
    {
        StaffAction.Pause => "pause", StaffAction.Resume => "resume", _ => "abort",
    };

    /// <summary>
    /// One engine pass over every open rollout this instance may drive (its lease). Returns whether anything changed. Run by
    /// <see cref="RolloutEngine"/> every second and whenever a machine changes.
    /// </summary>
    public async Task<bool> AdvanceAllAsync(CancellationToken ct)
    {
        var open = await store.ReadAsync(tx => tx.OpenRolloutIdsAsync(), ct);
        bool changed = false;
        foreach (long id in open) changed |= await AdvanceAsync(id, ct);
        if (changed) machineEvents.Changed();
        return changed;
    }

    /// <summary>Gives up this instance's leases (the controller stops): another instance takes the rollout over at its next pass.</summary>
    public Task ReleaseLeasesAsync(CancellationToken ct) => store.WriteAsync(async tx => { await tx.ReleaseRolloutLeasesAsync(Owner); return 0; }, ct);

    public async Task<bool> AdvanceAsync(long id, CancellationToken ct)
    {
        var (changed, events) = await store.WriteAsync(async tx =>
        {
            var pass = new Pass(tx, commandKey, Owner, settings);
            bool result = await pass.RunAsync(id);
            if (result) await tx.NotifyAsync("machines");
            return (result, pass.Events);
        }, ct);
        foreach (var (halted, text) in events)
            if (halted) Log.RolloutHalted(logger, id, text);
            else Log.Rollout(logger, id, text);
        return changed;
    }

    /// <summary>One pass over one rollout in one transaction.</summary>
    private sealed class Pass(IRolloutTx tx, TicketKey commandKey, string owner, RolloutSettings settings)
    {
        public List<(bool Halted, string Text)> Events { get; } = [];
        private Rollout r = null!;
        private string Actor => $"rollout:{r.Id}";

        public async Task<bool> RunAsync(long id)
        {
            var locked = await tx.GetRolloutAsync(id, forUpdate: true);
            if (locked is null || locked.Final) return false;
            if (!await tx.TakeRolloutLeaseAsync(id, owner, tx.Now + (long)FleetLimits.RolloutLease.TotalMilliseconds)) return false;
            r = locked;
            var rows = (await tx.ListRolloutMachinesAsync(id)).ToList();
            bool changed = false;
            if (r.State == RolloutState.Aborted) return false;
            for (int i = 0; i < rows.Count; i++)
            {
                if (!rows[i].InFlight) continue;
                var followed = await FollowAsync(rows[i]);
                if (followed != rows[i])
                {
                    rows[i] = followed;
                    await tx.UpdateRolloutMachineAsync(followed);
                    changed = true;
                }
            }
            if (r.State == RolloutState.Running)
            {
                changed |= await CheckHealthAsync(rows);
                if (r.State == RolloutState.Running) changed |= await StartNextAsync(rows);
                if (r.State == RolloutState.Running && rows.All(m => m.Step is RolloutStep.Done or RolloutStep.Skipped))
                {
                    await CompleteAsync(rows);
                    changed = true;
                }
            }
            if (changed) await tx.UpdateRolloutAsync(r with { UpdatedAt = tx.Now });
            return changed;
        }

        /// <summary>Moves an in-flight machine along by what the database says about it now.</summary>
        private async Task<RolloutMachine> FollowAsync(RolloutMachine m)
        {
            var machine = await tx.GetMachineAsync(m.MachineId, forUpdate: true);
            if (machine is null or { State: MachineState.Retired })
                return await FailAsync(m, $"{Name(m)} was retired during the rollout");
            long started = m.StartedAt ?? tx.Now;
            if (m.Step is RolloutStep.Draining or RolloutStep.Rebooting && machine.EnrolledAt <= started
                && await tx.GetRebootCommandAsync(machine.Id) is { RolloutId: var commandRollout } command && commandRollout == r.Id)
            {
                // Its relay has not rebooted yet. A refusal will not change by itself: fail with the relay's reason. A command that
                // expired before the relay took it (the relay was reconnecting, its controller failed over): sign a new one for the
                // same boot (new sequence, new nonce, the drain that is left), until the deadline fails it.
                if (command.Ack is { } ack && ack.StartsWith("refused:", StringComparison.Ordinal))
                    return await FailAsync(m, $"{Name(m)} refused its reboot command {command.Sequence} ({ack["refused:".Length..]})");
                if (command.AckedAt is null && command.ExpiresAt * 1000 <= tx.Now
                    && tx.Now <= started + (r.DrainSeconds + (long)r.DeadlineSeconds) * 1000L)
                {
                    long left = Math.Max(0, r.DrainSeconds - (tx.Now - started) / 1000);
                    long sequence = await OfferAsync(machine, (int)left);
                    await tx.AuditAsync(Actor, "rollout.command-reoffered", machine.Id, null,
                        $"command {command.Sequence} expired unanswered; command {sequence} signed (new nonce, drain {left} s)");
                    Events.Add((false, $"{Name(m)}: reboot command {command.Sequence} expired before its relay took it; command {sequence} offered"));
                }
            }
            if (m.Step == RolloutStep.Draining)
            {
                if (tx.Now < started + r.DrainSeconds * 1000L && machine.EnrolledAt <= started) return m;
                m = await StepAsync(m, RolloutStep.Rebooting, "drain period over; waiting for it to enroll again");
            }
            if (m.Step == RolloutStep.Rebooting)
            {
                if (machine.EnrolledAt <= started)
                {
                    if (tx.Now <= started + (r.DrainSeconds + (long)r.DeadlineSeconds) * 1000L) return m;
                    var last = await tx.GetRebootCommandAsync(machine.Id);
                    return await FailAsync(m, last is { AckedAt: null } && last.RolloutId == r.Id
                        ? $"{Name(m)} never took its reboot command within {r.DeadlineSeconds} s after its {r.DrainSeconds} s drain " +
                          $"(each expires after {(long)settings.CommandLifetime.TotalSeconds} s and was offered again; the last, {last.Sequence}, is unanswered): " +
                          "is its agent polling /relay/v1/command?"
                        : $"{Name(m)} did not come back within {r.DeadlineSeconds} s after its {r.DrainSeconds} s drain");
                }
                if (machine.PackageDigest != r.Digest)
                    return await FailAsync(m with { BootedSha256 = machine.PackageDigest },
                        $"{Name(m)} came back on digest {machine.PackageDigest[..12]}…, not the target {r.Digest[..12]}…");
                string? notDeployable = await ReleaseService.WhyNotDeployableAsync(tx, machine.Id, machine.PackageDigest)
                                        ?? (machine.State == MachineState.Awaiting ? "package not allowed" : null);
                if (notDeployable is not null)
                    return await FailAsync(m with { BootedSha256 = machine.PackageDigest }, $"{Name(m)} came back on the target but not deployable ({notDeployable})");
                if (machine.State == MachineState.Draining)
                {
                    var to = MachineLifecycle.Apply(machine, MachineLifecycle.Action.Deploy);
                    await tx.UpdateMachineAsync(machine with { State = to, PreviousState = null, UpdatedAt = tx.Now });
                    await tx.AuditAsync(Actor, "machine.deploy", machine.Id, $"rollout {r.Id}: back on the target", $"{machine.State.Name()} -> {to.Name()}");
                }
                m = await StepAsync(m with { BootedSha256 = machine.PackageDigest, EnrolledSeen = machine.EnrolledAt, ExpectRevision = await tx.HeadRevisionAsync() },
                    RolloutStep.Returning, $"enrolled on {machine.PackageDigest[..12]}…, deployed; waiting for it to serve");
            }
            if (m.Step == RolloutStep.Returning)
            {
                long? appliedAt = await tx.AppliedAtAsync(machine.Id);
                if (appliedAt > m.EnrolledSeen && machine.AppliedRevision >= (m.ExpectRevision ?? 0))
                    return await StepAsync(m with { FinishedAt = tx.Now }, RolloutStep.Done, $"serving revision {machine.AppliedRevision}");
                if (tx.Now > (m.EnrolledSeen ?? started) + r.DeadlineSeconds * 1000L)
                    return await FailAsync(m, $"{Name(m)} enrolled but did not serve within {r.DeadlineSeconds} s");
            }
            return m;
        }

        /// <summary>Halts when the fleet's serving relays (deployed now, plus the machines this rollout has out) fall below the threshold.</summary>
        private async Task<bool> CheckHealthAsync(List<RolloutMachine> rows)
        {
            if (r.MinServingPercent == 0 || r.BaselineServing == 0) return false;
            var counts = await tx.CountMachinesByStateAsync();
            long serving = counts.GetValueOrDefault(MachineState.Deployed) + rows.Count(m => m.Step is RolloutStep.Draining or RolloutStep.Rebooting);
            long needed = (r.BaselineServing * (long)r.MinServingPercent + 99) / 100;
            if (serving >= needed) return false;
            await HaltAsync($"fleet health: {serving} serving relays (with the rollout's own out of service) of {r.BaselineServing} at the start, " +
                            $"below {r.MinServingPercent}% ({needed})");
            return true;
        }

        private int BatchSize(int total) => r.Batch ?? (r.MaxUnavailablePercent is { } p ? Math.Max(1, total * p / 100) : 1);

        /// <summary>Canaries first (all at once), then batches: the next one starts when the previous is back.</summary>
        private async Task<bool> StartNextAsync(List<RolloutMachine> rows)
        {
            int inFlight = rows.Count(m => m.InFlight);
            bool canaryPhase = rows.Any(m => m.Position < r.Canary && m.Step is not (RolloutStep.Done or RolloutStep.Skipped));
            if (canaryPhase && rows.Any(m => m.Position < r.Canary && m.Step == RolloutStep.Failed)) return false;
            if (!canaryPhase && inFlight > 0) return false;
            int room = canaryPhase ? r.Canary - inFlight : BatchSize(rows.Count);
            var candidates = rows.Where(m => m.Step == RolloutStep.Pending && (!canaryPhase || m.Position < r.Canary)).OrderBy(m => m.Position).ToList();
            if (room <= 0 || candidates.Count == 0) return false;
            var deployed = (await tx.ListMachinesAsync(MachineState.Deployed)).ToList();
            bool changed = false;
            string? blocked = null;
            foreach (var candidate in candidates)
            {
                if (room == 0) break;
                int index = rows.IndexOf(candidate);
                var machine = await tx.GetMachineAsync(candidate.MachineId, forUpdate: true);
                if (machine is not { State: MachineState.Deployed })
                {
                    rows[index] = await StepAsync(candidate with { FinishedAt = tx.Now }, RolloutStep.Skipped,
                        $"no longer deployed ({machine?.State.Name() ?? "gone"}) at its turn", reasonToo: true);
                    await tx.UpdateRolloutMachineAsync(rows[index]);
                    changed = true;
                    continue;
                }
                if (r.PerLocationMin > 0)
                {
                    int others = deployed.Count(d => d.Id != machine.Id && Location(d) == candidate.Location);
                    if (others < r.PerLocationMin)
                    {
                        blocked ??= $"per-location-min {r.PerLocationMin}: {candidate.Location} would keep {others} serving relays without {Name(candidate)}";
                        continue;
                    }
                }
                rows[index] = await BeginAsync(candidate, machine);
                await tx.UpdateRolloutMachineAsync(rows[index]);
                deployed.RemoveAll(d => d.Id == machine.Id);
                room--;
                changed = true;
            }
            if (blocked is not null && !rows.Any(m => m.InFlight))
            {
                await HaltAsync(blocked);
                changed = true;
            }
            return changed;
        }

        /// <summary>Drains the machine (listed inactive, still serving), pins its target, and signs it a reboot command.</summary>
        private async Task<RolloutMachine> BeginAsync(RolloutMachine m, Machine machine)
        {
            var to = MachineLifecycle.Apply(machine, MachineLifecycle.Action.Drain);
            await tx.UpdateMachineAsync(machine with { State = to, PreviousState = null, UpdatedAt = tx.Now });
            await tx.AuditAsync(Actor, "machine.drain", machine.Id, $"rollout {r.Id} to {Target()}", $"{machine.State.Name()} -> {to.Name()}");
            await tx.SetMachineTargetAsync(machine.Id, r.Digest, r.Id);
            long sequence = await OfferAsync(machine, r.DrainSeconds);
            return await StepAsync(m with { StartedAt = tx.Now }, RolloutStep.Draining,
                $"drained; reboot command {sequence} signed (drain {r.DrainSeconds} s, then reboot into {Target()})");
        }

        /// <summary>Signs a reboot command for the machine's current boot (its WireGuard key) with the next sequence and a new nonce,
        /// and makes it the one its relay is offered; returns the sequence.</summary>
        private async Task<long> OfferAsync(Machine machine, int drainSeconds)
        {
            long sequence = await tx.NextCommandSequenceAsync(machine.Id);
            long now = tx.Now / 1000;
            var payload = new RebootCommandPayload(machine.Id, machine.WireGuardKey, sequence, RandomNumberGenerator.GetBytes(RebootCommandPayload.NonceSize),
                r.Digest, r.Release ?? 0, drainSeconds, r.Id, now, now + Math.Max(1, (long)settings.CommandLifetime.TotalSeconds));
            byte[] command = commandKey.SignRebootCommand(payload);
            await tx.SaveRebootCommandAsync(new RebootCommandRecord(machine.Id, sequence, Convert.ToBase64String(command), r.Id, payload.IssuedAt,
                payload.ExpiresAt, null, null));
            return sequence;
        }

        private async Task CompleteAsync(List<RolloutMachine> rows)
        {
            string detail = $"{rows.Count(m => m.Step == RolloutStep.Done)} rebooted, {rows.Count(m => m.Step == RolloutStep.Skipped)} skipped";
            // The class's current package becomes the target, so machines outside the rollout (new ones, later reboots) boot it
            // too, and the pins go.
            if (r.MachineClass is { } machineClass && r.Release is { } release
                && await tx.GetReleaseClassAsync(machineClass, forUpdate: true) is var current && current?.CurrentDigest != r.Digest
                && release >= (current?.MinRelease ?? 0))
            {
                await tx.SaveReleaseClassAsync(new ReleaseClass(machineClass, r.Digest, release, current?.MinRelease ?? 0, tx.Now));
                await tx.AuditAsync(Actor, "release.set-current", machineClass, $"rollout {r.Id} completed",
                    $"release {release} digest {r.Digest}" + (current?.CurrentDigest is { } was ? $" (was release {current.CurrentRelease} digest {was})" : ""));
                detail += $"; {machineClass} current release is now {release}";
            }
            await tx.DeleteMachineTargetsAsync(r.Id);
            r = r with { State = RolloutState.Completed };
            await tx.AuditAsync(Actor, "rollout.complete", $"rollout {r.Id}", null, detail);
            Events.Add((false, "completed: " + detail));
        }

        private async Task HaltAsync(string reason)
        {
            r = r with { State = RolloutState.Halted, HaltReason = reason };
            await tx.AuditAsync(Actor, "rollout.halt", $"rollout {r.Id}", reason, null);
            Events.Add((true, reason));
        }

        private async Task<RolloutMachine> FailAsync(RolloutMachine m, string reason)
        {
            // A command its relay has not taken yet is withdrawn: a failed machine is not rebooted behind the rollout's back.
            if (await tx.GetRebootCommandAsync(m.MachineId) is { AckedAt: null } pending && pending.RolloutId == r.Id)
                await tx.AckRebootCommandAsync(m.MachineId, pending.Sequence, "withdrawn");
            var failed = await StepAsync(m with { FinishedAt = tx.Now }, RolloutStep.Failed, reason, reasonToo: true);
            if (r.State is RolloutState.Running or RolloutState.Paused) await HaltAsync(reason);
            return failed;
        }

        private async Task<RolloutMachine> StepAsync(RolloutMachine m, RolloutStep to, string detail, bool reasonToo = false)
        {
            await tx.AuditAsync(Actor, "rollout.step", m.MachineId, null, $"{m.Step.Name()} -> {to.Name()}: {detail}");
            return m with { Step = to, Reason = reasonToo ? detail : m.Reason };
        }

        private string Target() => (r.Release is { } n ? $"release {n} " : "") + r.Digest[..12] + "…";

        private static string Name(RolloutMachine m) => m.Hostname ?? m.MachineId;
    }

    /// <summary>A relay's newest reboot command for its current boot with a sequence above <paramref name="after"/>, or null.</summary>
    public async Task<byte[]?> CommandForAsync(Machine relay, long after, CancellationToken ct)
    {
        var record = await store.ReadAsync(tx => tx.GetRebootCommandAsync(relay.Id), ct);
        if (record is null || record.Sequence <= after || record.AckedAt is not null || record.ExpiresAt * 1000 <= DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())
            return null;
        byte[] bytes = Convert.FromBase64String(record.Command);
        try
        {
            // Issued to an earlier boot (another WireGuard key): that boot is gone, this one would refuse it.
            return RebootCommand.Parse(bytes).Payload.WireGuardPublicKey.AsSpan().SequenceEqual(relay.WireGuardKey) ? bytes : null;
        }
        catch (RebootCommandException) { return null; }
    }

    /// <summary>Records what the relay made of its command (audited: accepted, or refused with the reason).</summary>
    public async Task AcknowledgeAsync(Machine relay, long sequence, bool accepted, string? refusal, CancellationToken ct)
    {
        string answer = accepted ? "accepted" : "refused:" + (Enum.GetValues<RebootRefusal>().Select(x => x.Name()).FirstOrDefault(n => n == refusal) ?? "unknown");
        bool recorded = await store.WriteAsync(async tx =>
        {
            if (!await tx.AckRebootCommandAsync(relay.Id, sequence, answer)) return false;
            await tx.AuditAsync("machine:" + relay.Id, "rollout.command-" + (accepted ? "accepted" : "refused"), relay.Id, null, $"sequence {sequence}: {answer}");
            await tx.NotifyAsync("machines");
            return true;
        }, ct);
        if (!recorded) throw new FleetException(FleetError.NotFound, $"command {sequence} is not this machine's newest unanswered command");
        machineEvents.Changed();
        Log.RebootCommandAnswered(logger, relay.Id, sequence, answer);
    }

    private static string Location(Machine m) => m.Placement is { } p ? $"{p.CountryCode}-{p.CityCode}" : "";

    private static string Describe(Rollout r) =>
        (r.Release is { } n ? $"release {n} " : "") + $"digest {r.Digest}, canary {r.Canary}, " +
        (r.Batch is { } b ? $"batch {b}" : r.MaxUnavailablePercent is { } p ? $"max-unavailable {p}%" : "batch 1") +
        $", drain {r.DrainSeconds} s, per-location-min {r.PerLocationMin}, deadline {r.DeadlineSeconds} s, min-serving {r.MinServingPercent}%";

    private static int Bounded(int value, int min, int max, string field) =>
        value >= min && value <= max ? value : throw new FleetException(FleetError.InvalidInput, $"{field} is {min}..{max}");
}

using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Tabula.Fleet.Api;
using static Tabula.Lab.LabRunner;

namespace Tabula.Lab;

/// <summary>What `lab upgrade` did (fields are only ever added; docs/lab.md "`lab upgrade`" says what each time means).</summary>
/// <param name="Release">The new release number (r2 after the first upgrade).</param>
/// <param name="PackageSha256">SHA-256 of the new package's archive, now on `stable`.</param>
/// <param name="PackageBytes">Its size.</param>
/// <param name="PackageSigners">Who signed it and how many signatures verified.</param>
/// <param name="Relays">One entry per relay, in the order they were rolled (the rollout's order).</param>
/// <param name="TookSeconds">The whole upgrade (build, sign, publish, rollout, floor).</param>
public sealed record LabUpgradeSummary(int Release, string PackageSha256, long PackageBytes, string PackageSigners,
    IReadOnlyList<UpgradedRelay> Relays, double TookSeconds)
{
    /// <summary>The controller's rollout that rolled it (`tabula fleet rollout status`).</summary>
    public long? RolloutId { get; init; }

    /// <summary>Its final state (completed).</summary>
    public string? RolloutState { get; init; }

    /// <summary>Its canaries and batch size.</summary>
    public int? Canary { get; init; }

    /// <summary>Machines per batch after the canaries.</summary>
    public int? Batch { get; init; }

    /// <summary>The rollout's wall time on the controller's clock: created → completed (its updated_at when it completed).</summary>
    public double? RolloutSeconds { get; init; }
}

/// <summary>One relay's roll. All times are seconds on the lab's clock, read from the relay's serial console as the lines arrive.</summary>
/// <param name="Name">relay-N.</param>
/// <param name="MachineId">Its machine id (the same before and after: the identity key is in its host configuration).</param>
/// <param name="BootedSha256">The package digest stboot verified and kexec'd.</param>
/// <param name="EnrolledState">Its state when it enrolled again (draining: the package was allowed, so it served without staff).</param>
/// <param name="Fingerprint">Its new fingerprint (a new WireGuard key every boot).</param>
/// <param name="DrainSeconds">The relay accepted its reboot command → it rebooted (the drain: listed inactive, still serving).</param>
/// <param name="OutOfServiceSeconds">It rebooted (its agent's last line) → the first ping answered through its tunnel again, with
/// the customer's client pointed at its new key.</param>
/// <param name="KexecAt">Reboot → stboot's kexec into the new package (firmware, stboot's kernel, ticket, fetch, verify).</param>
/// <param name="EnrolledAt">Reboot → the agent enrolled.</param>
/// <param name="Handshake">The customer's client completed a handshake with the relay's new key.</param>
/// <param name="Ping">A ping through the tunnel was answered.</param>
/// <param name="OthersServing">Every other relay not out of service itself answered a ping through its tunnel while this one was down.</param>
/// <param name="Stboot">stboot's own timeline of this boot.</param>
public sealed record UpgradedRelay(string Name, string MachineId, string BootedSha256, string EnrolledState, string Fingerprint,
    double DrainSeconds, double OutOfServiceSeconds, double KexecAt, double EnrolledAt, bool Handshake, bool Ping, bool OthersServing,
    IReadOnlyDictionary<string, long> Stboot)
{
    /// <summary>One of the rollout's canaries.</summary>
    public bool Canary { get; init; }

    /// <summary>Its step in the rollout at the end (done).</summary>
    public string? Step { get; init; }

    /// <summary>Rollout started → the relay accepted its reboot command (the canaries first; the batch once they are back).</summary>
    public double? CommandAt { get; init; }

    /// <summary>Reboot → the agent serving again (its stage:serve line).</summary>
    public double? ServingAt { get; init; }

    /// <summary>Once the rollout completed, the lab's client ran the real <c>tabula relay attest</c> through the relay's tunnel: the
    /// new package measured and attested (issue 19); null in a lab without TPMs.</summary>
    public RelayAttestation? Attestation { get; init; }
}

/// <summary>
/// One run of `lab upgrade`: a new release of the relay package is built, signed by two signers (signer2 and signer3: any
/// two of the three will do), allowed in the fleet, made the class's current release, published to `stable` with `tabula
/// publish` (the provisioning server verifies it against its trust policy), and then rolled by the controller: `tabula fleet
/// rollout start` (canaries, then batches). The lab touches no machine: each relay takes its signed reboot command, serves
/// through its drain, reboots inside its running QEMU through firmware into stboot, which fetches, verifies and boots the new
/// package under a ticket naming it; the agent enrolls again and the controller deploys it. The lab follows each relay's
/// console, points the customer's client at the relay's new key (as a client app does when the relay list changes), pings
/// through it, and pings the other relays while it is down.
/// </summary>
internal sealed class LabUpgrade(LabActionOptions options)
{
    static readonly ConsoleMarker CommandAccepted = ConsoleMarker.Relay("note:command", "reboot command accepted");
    static readonly ConsoleMarker Rebooting = ConsoleMarker.Relay("note:command", "drain over");

    public async Task<LabUpgradeSummary> RunAsync(CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        using var lab = new LabOperator(options, "upgrade");
        int release = lab.State.Release + 1;
        string releaseText = release.ToString(CultureInfo.InvariantCulture);
        lab.Say($"[1/3] release r{release}: a new relay OS package, signed by signer2 and signer3");
        var (root, signers) = LabSigning.LoadKeys(Path.Combine(lab.Directory, "keys"));
        string relayBinary = NativeBinaries.Find(NativeBinaries.Relay, m => lab.Say("      " + m));
        var packageKernel = lab.PackageKernel();
        if (lab.State.SecureBoot)
            lab.Say($"      Secure Boot: its kernel signed with the lab's db key ({packageKernel.KernelPath}), as `up` did, for kexec_file_load under lockdown");
        byte[] archive = BuildRelayArchive(relayBinary, packageKernel, lab.Summary.FleetCa, $"Tabula lab relay r{release}", release).Archive;
        byte[] descriptor = LabSigning.Sign(archive, [signers[1], signers[2]]);
        var verdict = LabSigning.Verify(descriptor, archive, root);
        if (!verdict.Accepted)
            throw new LabException($"release r{release} does not verify: {verdict.Summary}");
        string packages = Path.Combine(lab.Directory, "packages");
        string zipPath = Path.Combine(packages, $"relay-r{release}.zip"), jsonPath = Path.Combine(packages, $"relay-r{release}.json");
        File.WriteAllBytes(zipPath, archive);
        File.WriteAllBytes(jsonPath, descriptor);
        lab.Say($"      {archive.Length / 1e6:0.0} MB, sha256 {verdict.ArchiveSha256}; verified: {verdict.Summary}");

        lab.Say($"[2/3] allow r{release} in the fleet (relays that boot it keep their state), name it the current release, publish it to `stable`");
        lab.FleetCli("fleet", "packages", "allow", verdict.ArchiveSha256, "--reason", $"lab upgrade to r{release}");
        // The class's current release: tickets of machines outside the rollout (new ones) name it. The rollout pins each of its
        // machines: to what it runs until its turn, to r{release} from then on.
        lab.FleetCli("fleet", "releases", "set-current", "--class", MachineClass, "--digest", verdict.ArchiveSha256,
            "--release", releaseText, "--reason", $"lab upgrade to r{release}");
        lab.TabulaInNamespace("publish", jsonPath, zipPath, "--server", $"https://{LabNetwork.HostAddress}:{ProvisioningPort}", "--channel", "stable",
            "--ca", Path.Combine(lab.Directory, "provisioning", "tls", "ca.pem"), "--token-file", ProvisioningTokenFile(lab.Directory));
        lab.State.Release = release;
        lab.Save(lab.Summary with
        {
            PackageSha256 = verdict.ArchiveSha256, PackageBytes = archive.Length,
            PackageSigners = $"{verdict.Valid} of {verdict.Found} valid, {verdict.Required} required (signer2, signer3)",
        });

        lab.Say($"[3/3] the controller rolls r{release}: canary {options.Canary}, then batches of {options.Batch}; each relay drains " +
                $"{lab.DrainGrace.TotalSeconds:0}s, reboots into stboot, comes back on r{release} and serves");
        var machines = new List<LabMachine>();
        try
        {
            // Follow every console before the first command can arrive, so no line is missed.
            for (int i = 0; i < lab.Summary.Relays.Count; i++)
                machines.Add(lab.Attach(i));
            var rollout = new RolloutFollower(lab, machines, verdict.ArchiveSha256, release);
            string started = lab.FleetCli("fleet", "rollout", "start", "--channel", "stable", "--release", releaseText,
                "--canary", options.Canary.ToString(CultureInfo.InvariantCulture), "--batch", options.Batch.ToString(CultureInfo.InvariantCulture),
                "--drain-seconds", ((int)lab.DrainGrace.TotalSeconds).ToString(CultureInfo.InvariantCulture),
                "--deadline-seconds", ((int)lab.StageTimeout.TotalSeconds).ToString(CultureInfo.InvariantCulture),
                "--reason", $"lab upgrade to r{release}", "--json");
            var view = JsonSerializer.Deserialize(started, FleetJson.Default.RolloutView)
                       ?? throw new LabException($"`fleet rollout start` answered no rollout: {started}");
            var (final, rolled) = await rollout.RunAsync(view, ct);

            // Every relay runs r{release}: the class's floor follows, so no ticket ever names an older release again.
            lab.FleetCli("fleet", "releases", "floor", "--class", MachineClass, "--min-release", releaseText,
                "--reason", $"lab upgrade: every relay runs r{release}");
            lab.Say($"      floor of class {MachineClass} raised to r{release}");
            rolled = await AttestAsync(lab, rolled, ct);
            return new LabUpgradeSummary(release, verdict.ArchiveSha256, archive.Length,
                $"{verdict.Valid} of {verdict.Found} valid, {verdict.Required} required (signer2, signer3)", rolled, Round(total.Elapsed))
            {
                RolloutId = final.Id, RolloutState = final.State, Canary = final.Canary, Batch = final.Batch,
                RolloutSeconds = Round(final.UpdatedAt - final.CreatedAt),
            };
        }
        finally
        {
            foreach (var machine in machines)
                machine.Dispose();
        }
    }

    /// <summary>
    /// Follows one rollout: polls the controller's view every second (saying each step change, failing on a halt or an abort), and
    /// per relay of the rollout follows its console from the reboot command to serving again, then moves the customer's client.
    /// </summary>
    sealed class RolloutFollower(LabOperator lab, IReadOnlyList<LabMachine> machines, string digest, int release)
    {
        readonly Lock gate = new();
        readonly HashSet<string> down = [];
        readonly Dictionary<string, TaskCompletionSource> turns = [];
        readonly Stopwatch sinceStart = Stopwatch.StartNew();

        public async Task<(RolloutView Final, IReadOnlyList<UpgradedRelay> Relays)> RunAsync(RolloutView view, CancellationToken ct)
        {
            lab.Say($"      rollout {view.Id}: {string.Join(", ", view.Machines.Select(m => $"{m.Hostname ?? m.MachineId[..12]}{(m.Canary ? " (canary)" : "")}"))}");
            var relays = view.Machines.OrderBy(m => m.Position).Select(m =>
            {
                int index = lab.Summary.Relays.ToList().FindIndex(r => r.MachineId == m.MachineId);
                if (index < 0)
                    throw new LabException($"rollout {view.Id} names machine {m.MachineId}, which is none of this lab's relays");
                turns[m.MachineId] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                return (Machine: m, Index: index);
            }).ToList();
            using var failed = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var follows = relays.Select(r => FollowAsync(r.Index, r.Machine, failed.Token)).ToList();
            var poll = PollAsync(view, failed.Token);
            try
            {
                // The first failure ends the rest (a halt, a relay that never comes back).
                var pending = new List<Task>([.. follows, poll]);
                while (pending.Count > 0)
                {
                    var done = await Task.WhenAny(pending);
                    pending.Remove(done);
                    if (done.IsFaulted || done.IsCanceled)
                    {
                        await failed.CancelAsync();
                        await done;   // throws its exception
                    }
                }
            }
            finally
            {
                await failed.CancelAsync();
                await Task.WhenAll([.. follows, poll]).ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }
            var final = await poll;
            var steps = final.Machines.ToDictionary(m => m.MachineId, m => m.Step);
            return (final, [.. follows.Select(f => f.Result with { Step = steps.GetValueOrDefault(f.Result.MachineId) })]);
        }

        /// <summary>The controller's view every second until the rollout completes; a halt or an abort fails the upgrade with why.</summary>
        async Task<RolloutView> PollAsync(RolloutView view, CancellationToken ct)
        {
            var steps = view.Machines.ToDictionary(m => m.MachineId, m => m.Step);
            while (true)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
                view = await lab.RolloutAsync(ct);
                foreach (var m in view.Machines)
                {
                    if (steps.GetValueOrDefault(m.MachineId) != m.Step)
                    {
                        lab.Say($"      rollout {view.Id}: {m.Hostname ?? m.MachineId[..12]} {steps.GetValueOrDefault(m.MachineId)} -> {m.Step}" +
                                (m.Reason is { } why ? $" ({why})" : ""));
                        steps[m.MachineId] = m.Step;
                    }
                    if (m.Step != "pending" && turns.TryGetValue(m.MachineId, out var turn))
                        turn.TrySetResult();
                }
                switch (view.State)
                {
                    case "completed":
                        lab.Say($"      rollout {view.Id} completed: {view.Done} of {view.Total} machines ({Round(view.UpdatedAt - view.CreatedAt):0.0}s on the controller)");
                        return view;
                    case "halted" or "aborted":
                        throw new LabException($"rollout {view.Id} {view.State}: {view.HaltReason ?? "no reason recorded"}; machines: " +
                                               string.Join("; ", view.Machines.Select(m => $"{m.Hostname ?? m.MachineId} {m.Step}{(m.Reason is { } r ? $" ({r})" : "")}")) +
                                               " (tabula fleet rollout status)");
                }
            }
        }

        /// <summary>One relay, from its reboot command to serving on the new release with the customer's client pointed at it.</summary>
        async Task<UpgradedRelay> FollowAsync(int index, RolloutMachineView rolled, CancellationToken ct)
        {
            var relay = lab.Summary.Relays[index];
            var machine = machines[index];
            await turns[rolled.MachineId].Task.WaitAsync(ct);
            var accepted = await WaitWithProgressAsync(machine, CommandAccepted, "the agent to take its reboot command", lab.Say, lab.StageTimeout, ct);
            double commandAt = Round(sinceStart.Elapsed);
            lab.Say($"      {relay.Name}: {Detail(accepted.Line)}; listed inactive, still serving through the drain");
            var reboot = await WaitWithProgressAsync(machine, Rebooting, "the drain to end", lab.Say, lab.StageTimeout, ct, accepted.At);
            lock (gate) down.Add(relay.Name);
            var after = reboot.At;
            double drainSeconds = Round(reboot.At - accepted.At);
            lab.Say($"      {relay.Name}: rebooting into stboot inside its running QEMU after {drainSeconds:0.0}s of drain; its RAM, WireGuard key and peers go");
            List<RelaySummary> up;
            lock (gate)
                up = [.. lab.Summary.Relays.Where(r => !down.Contains(r.Name))];
            List<(string Name, bool Ping)> others = [.. up.Select(r => (r.Name, LabClient.PingOnce(lab.ClientNamespace, r.WireguardInterface)))];
            foreach (var (name, answered) in others)
                lab.Say($"      meanwhile {name}: ping through its tunnel {(answered ? "answered" : "NOT answered")}");

            var boot = await lab.WaitBootAsync(machine, ct, after);
            if (boot.VerifiedSha256 != digest)
                throw new LabException($"{relay.Name} booted package {boot.VerifiedSha256}, not release r{release} ({digest})");
            if (boot.MachineId != relay.MachineId)
                throw new LabException($"{relay.Name} enrolled as {boot.MachineId}, expected {relay.MachineId}");
            lab.Say($"      {relay.Name}: booted r{release} and enrolled again as {boot.EnrolledState} with a new fingerprint (a new WireGuard key); " +
                    "the controller deploys it");
            var serving = await WaitWithProgressAsync(machine, ConsoleMarker.Relay("stage:serve"), "the relay to serve", lab.Say, lab.StageTimeout, ct, after);
            var (view, handshake, ping) = await lab.ReconnectAsync(index, relay.MachineId, ct);
            double outOfService = Round(machine.Elapsed - after);
            lock (gate)
            {
                down.Remove(relay.Name);
                lab.Record(index, boot, view, handshake, ping, after);
            }
            lab.Say($"      {relay.Name}: serving {Round(serving.At - after):0.0}s after the reboot; the client switched to the new key: handshake " +
                    $"{(handshake ? "done" : "NONE")}, ping {(ping ? "answered" : "NOT answered")}; out of service {outOfService:0.0}s (reboot → ping)");
            return new UpgradedRelay(relay.Name, relay.MachineId, boot.VerifiedSha256, boot.EnrolledState, boot.Fingerprint, drainSeconds, outOfService,
                Round(boot.KexecAt - after), Round(boot.EnrolledAt - after), handshake, ping, others.All(o => o.Ping), machine.StbootTimeline(after))
            {
                Canary = rolled.Canary, CommandAt = commandAt, ServingAt = Round(serving.At - after),
            };
        }

        static string Detail(string line) => ConsoleLine.TryParse(line)?.Detail ?? line;
    }

    /// <summary>In a lab whose relays have TPMs: the customer checks each relay through its tunnel with the real `relay attest`
    /// (the new package, measured by stboot, attested by the relay's TPM); the verdicts go into the summary and the lab's state.</summary>
    static async Task<IReadOnlyList<UpgradedRelay>> AttestAsync(LabOperator lab, IReadOnlyList<UpgradedRelay> rolled, CancellationToken ct)
    {
        if (lab.Summary.TpmManufacturerCa is null)
            return rolled;
        string roots = LabTpm.ManufacturerCertificate(lab.Directory), signingRoot = Path.Combine(lab.Directory, "keys", "root.pem");
        var attested = new List<UpgradedRelay>();
        foreach (var relay in rolled)
        {
            var (summary, _) = lab.Relay(relay.Name);
            var view = await lab.MachineAsync(relay.MachineId, ct);
            var attestation = LabClient.Attest(lab.Tabula, lab.ClientNamespace, summary.WireguardInterface, view.WireguardPublicKey, signingRoot, roots);
            lab.Say($"      {relay.Name}: $ {attestation.Command}");
            lab.Say($"      {relay.Name}: relay attest through the tunnel: {LabClient.Describe(attestation)}");
            lab.Save(lab.Summary with { Relays = [.. lab.Summary.Relays.Select(r => r.Name == relay.Name ? r with { Attestation = attestation } : r)] });
            attested.Add(relay with { Attestation = attestation });
        }
        return attested;
    }
}

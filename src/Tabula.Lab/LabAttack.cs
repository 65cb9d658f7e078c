using System.Diagnostics;
using Tabula.Packaging;
using Tabula.Provisioning;
using Tabula.Provisioning.Core;
using Tabula.Provisioning.Storage;
using static Tabula.Lab.LabRunner;

namespace Tabula.Lab;

/// <summary>What `lab attack` showed.</summary>
/// <param name="Relay">The relay that was attacked (relay-1 unless told).</param>
/// <param name="Attacks">Each attack and how the machine answered it, in order.</param>
/// <param name="Recovered">Once the server served the genuine package again, the relay booted it, enrolled, served and a
/// ping through its tunnel was answered.</param>
/// <param name="OthersServing">Every other relay answered a ping through its tunnel during the attacks.</param>
/// <param name="TookSeconds">The whole run.</param>
public sealed record LabAttackSummary(string Relay, IReadOnlyList<AttackResult> Attacks, bool Recovered, bool OthersServing, double TookSeconds);

/// <summary>One attack.</summary>
/// <param name="Name">tampered-package, one-signer, rogue-signer, rollback, replayed-ticket (<see cref="LabRunner.AttackNames"/>).</param>
/// <param name="Served">What the compromised provisioning server (and, for replayed-ticket, the man in the middle) served.</param>
/// <param name="Refused">The machine refused it for the reason the round expects (signatures for the first three, freshness
/// for rollback and replayed-ticket) with a FAILED line for that round, and did not kexec.</param>
/// <param name="Console">stboot's FAILED line for the round: stage, reason code, detail.</param>
/// <param name="Signatures">stboot's per-signature rejection lines for the round.</param>
public sealed record AttackResult(string Name, string Served, bool Refused, string Console, IReadOnlyList<string> Signatures)
{
    /// <summary>The FAILED line's stage (verify, freshness, …).</summary>
    public string? Stage { get; init; }

    /// <summary>The FAILED line's reason code (SignaturesRefused, FreshnessRefused, …).</summary>
    public string? Reason { get; init; }

    /// <summary>stboot's freshness lines for the round ("freshness … refused reason=ticket-digest …").</summary>
    public IReadOnlyList<string> Freshness { get; init; } = [];
}

/// <summary>
/// One run of `lab attack`: the provisioning server is treated as seized (its store on disk is the attacker's to write,
/// and its trust policy is no obstacle), and one relay is power-cycled into up to five attacks in a row, one per stboot
/// retry round (stboot waits 6 s between rounds and gives up after 8):
/// <list type="number">
/// <item>tampered-package: one byte of the genuine archive is changed in place on the server;</item>
/// <item>one-signer: an attacker's build of the relay package, signed by signer1 alone (one genuine key stolen);</item>
/// <item>rogue-signer: the same build signed by two signers under the attacker's own root;</item>
/// <item>rollback: the previous genuine release (validly signed; on a lab never upgraded, a genuine build without a
/// release number, as packages were before releases existed): refused for freshness, the controller's ticket names
/// another package;</item>
/// <item>replayed-ticket: the server serves the genuine package again, but someone holding the controller's TLS key
/// answers the relay's ticket request with a ticket recorded in an earlier round (<see cref="LabTicketInterceptor"/>).</item>
/// </list>
/// The machine must refuse each with the round's reason on its console and never kexec. Then `stable` points at the
/// genuine package again, the path to the controller is honest again, and the same boot, on its next round, verifies
/// it, gets a fresh ticket, kexecs, enrolls and serves; staff deploy it back.
/// </summary>
internal sealed class LabAttack(LabActionOptions options, string relayName, IReadOnlyList<string> names)
{
    /// <summary>One round: its name, what is served, how to set it up, and the FAILED reason that counts as refused.</summary>
    sealed record Attack(string Name, string Served, Func<CancellationToken, Task> Apply, string ExpectedReason);

    public async Task<LabAttackSummary> RunAsync(CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        using var lab = new LabOperator(options, "attack");
        var (relay, index) = lab.Relay(relayName);
        string genuine = lab.Summary.PackageSha256;
        var (server, all) = PrepareAttacks(lab, genuine, index);
        var attacks = all.Where(a => names.Contains(a.Name)).ToArray();

        lab.Say($"[2/4] take {relay.Name} out of service");
        lab.FleetCli("fleet", "machines", "drain", relay.MachineId, "--reason", "lab attack");
        lab.PowerOff(relay.Name);
        lab.Say($"      {relay.Name} powered off");

        lab.Say($"[3/4] the provisioning server is seized: each stboot round of {relay.Name} meets another attack");
        var rounds = new Rounds();
        try
        {
            if (attacks.Any(a => a.Name == "replayed-ticket"))
            {
                server.Intercept();
                lab.Say($"      someone holding the controller's TLS key sits between {relay.Name} and the controller (nft table ip tabula_lab_attack " +
                        $"in {lab.State.Namespace}: its connections to :{FleetPort} go to :{LabTicketInterceptor.Port}); it passes ticket requests on and keeps the tickets");
            }
            await RunRoundsAsync(lab, relay.Name, index, attacks, rounds, ct);

            lab.Say($"[4/4] the server is restored: `stable` → the genuine package {genuine[..16]}… again");
            await server.RestoreAsync(ct);
            bool recovered = await RecoverAsync(lab, relay.Name, index, rounds.Machine!, genuine, ct);
            return new LabAttackSummary(relay.Name, rounds.Results, recovered, rounds.OthersServing, Round(total.Elapsed));
        }
        finally
        {
            rounds.Machine?.Dispose();
            await server.RestoreAsync(CancellationToken.None);
        }
    }

    /// <summary>What the rounds left: each attack's result, the machine once powered on, whether the others served.</summary>
    sealed class Rounds
    {
        public List<AttackResult> Results { get; } = [];
        public LabMachine? Machine { get; set; }
        public bool OthersServing { get; set; } = true;
    }

    /// <summary>Step 1: the attacker's material (a rebuilt relay package, a stolen signer, a rogue root, an older genuine
    /// release) and the attacks on the seized server.</summary>
    (SeizedServer Server, Attack[] Attacks) PrepareAttacks(LabOperator lab, string genuine, int index)
    {
        var store = new FileStore(Path.Combine(lab.Directory, "provisioning", "store"));
        var (root, signers) = LabSigning.LoadKeys(Path.Combine(lab.Directory, "keys"));

        lab.Say("[1/4] the attacker's material: a rebuilt relay package, a rogue root with its own signers");
        string relayBinary = NativeBinaries.Find(NativeBinaries.Relay, m => lab.Say("      " + m));
        byte[] attackerArchive = BuildRelayArchive(relayBinary, lab.Kernel, lab.Summary.FleetCa, "Tabula lab relay (attacker's build)",
            release: lab.State.Release + 1).Archive;   // an attacker claims to be newer
        string attackDir = Path.Combine(lab.Directory, "attack");
        var (rogueRoot, rogueSigners) = LabSigning.CreateKeys(Path.Combine(attackDir, "keys"), "rogue-");
        byte[] oneSigner = LabSigning.Sign(attackerArchive, [signers[0]]);
        byte[] rogue = LabSigning.Sign(attackerArchive, [rogueSigners[0], rogueSigners[1]]);
        lab.Say($"      attacker's build {attackerArchive.Length / 1e6:0.0} MB; signed by signer1 alone: {LabSigning.Verify(oneSigner, attackerArchive, root).Summary}");
        lab.Say($"      signed by rogue-signer1 and rogue-signer2 (keys in {attackDir}/keys): {LabSigning.Verify(rogue, attackerArchive, root).Summary}");

        var (olderArchive, olderDescriptor, older) = OlderRelease(lab, relayBinary, signers);
        lab.Say($"      older genuine release: {older}; {LabSigning.Verify(olderDescriptor, olderArchive, root).Summary}");

        var server = new SeizedServer(store, genuine, Path.Combine(lab.Directory, "provisioning", "trust"), attackerArchive,
            lab.State.Namespace, LabInternet.RelayPublic4(index), Path.Combine(lab.Directory, "fleet", "tls"));
        const string signaturesRefused = "SignaturesRefused", freshnessRefused = "FreshnessRefused";
        Attack[] attacks =
        [
            new Attack("tampered-package", $"the genuine descriptor; the archive with byte {server.FlipOffset} changed on the server's disk",
                _ => { server.FlipByte(); return Task.CompletedTask; }, signaturesRefused),
            new Attack("one-signer", "the attacker's build signed by signer1 only (a stolen key), published under a loosened policy (threshold 1), " +
                                     "on `stable` and under the current package's digest",
                async token => { server.RestoreByte(); await server.PublishAsAttackerAsync(oneSigner, new VerificationPolicy([root.Certificate], 1), token); },
                signaturesRefused),
            new Attack("rogue-signer", "the attacker's build signed by rogue-signer1 and rogue-signer2 under the attacker's root, on `stable` and under " +
                                       "the current package's digest",
                token => server.PublishAsAttackerAsync(rogue, new VerificationPolicy([rogueRoot.Certificate], LabSigning.Threshold), token), signaturesRefused),
            new Attack("rollback", $"{older}, validly signed (2 of 3), on `stable` and under the current package's digest, while the controller's " +
                                   "tickets name the current release",
                async token => { server.RestoreByte(); await server.ServeOlderAsync(olderDescriptor, olderArchive, token); }, freshnessRefused),
            new Attack("replayed-ticket", "the genuine package; the relay's ticket request answered, with the controller's TLS key, by a ticket recorded " +
                                          "in an earlier round (the ticket key stays the controller's)",
                async token => { server.RestoreByte(); await server.ServeGenuineAsync(token); server.Replay(); }, freshnessRefused),
        ];
        return (server, attacks);
    }

    /// <summary>The release before the lab's current one, genuinely signed: after `lab upgrade` the previous release's
    /// files; on a lab never upgraded, the relay package built without a release number (as every package was before
    /// releases existed) and signed by signer1 and signer3.</summary>
    static (byte[] Archive, byte[] Descriptor, string What) OlderRelease(LabOperator lab, string relayBinary, IReadOnlyList<LabSigner> signers)
    {
        int current = lab.State.Release;
        string packages = Path.Combine(lab.Directory, "packages");
        if (current >= 2)
        {
            string name = current == 2 ? "relay" : $"relay-r{current - 1}";
            string zip = Path.Combine(packages, name + ".zip"), json = Path.Combine(packages, name + ".json");
            if (File.Exists(zip) && File.Exists(json))
                return (File.ReadAllBytes(zip), File.ReadAllBytes(json), $"release r{current - 1} ({name}.zip, what `lab up`/`lab upgrade` signed)");
        }
        byte[] archive = BuildRelayArchive(relayBinary, lab.Kernel, lab.Summary.FleetCa, "Tabula lab relay (before releases)", release: 0).Archive;
        byte[] descriptor = LabSigning.Sign(archive, [signers[0], signers[2]]);
        File.WriteAllBytes(Path.Combine(packages, "relay-r0.zip"), archive);
        File.WriteAllBytes(Path.Combine(packages, "relay-r0.json"), descriptor);
        return (archive, descriptor, "a genuine relay package without a release number (relay-r0.zip, signed by signer1 and signer3)");
    }

    /// <summary>Step 3: one stboot round per attack; each must end in a FAILED line with the round's reason and no kexec.</summary>
    static async Task RunRoundsAsync(LabOperator lab, string relayName, int index, Attack[] attacks, Rounds rounds, CancellationToken ct)
    {
        TimeSpan previousRound = TimeSpan.Zero;
        for (int round = 1; round <= attacks.Length; round++)
        {
            var attack = attacks[round - 1];
            await attack.Apply(ct);
            lab.Say($"      attack {round}, {attack.Name}: the server now serves {attack.Served}");
            if (rounds.Machine is null)
            {
                rounds.Machine = lab.PowerOn(index);
                lab.Say($"      {relayName} powered on (console {rounds.Machine.ConsoleLog})");
            }
            var machine = rounds.Machine;
            // stboot's end-of-round line: "tabula-boot: FAILED t=… stage=… reason=… detail=… round=N/8 next=retry-in-6000ms"
            string roundPrefix = $"{round}/";
            var failed = await WaitWithProgressAsync(machine,
                ConsoleMarker.Boot("FAILED") with { Where = l => l.Field("round")?.StartsWith(roundPrefix, StringComparison.Ordinal) == true },
                $"stboot's verdict on round {round}", lab.Say, lab.StageTimeout, ct);
            var signatures = machine.FindAll(ConsoleMarker.Boot("signature")).Where(l => l.At > previousRound && l.At <= failed.At).Select(l => Trim(l.Line)).ToList();
            var freshness = machine.FindAll(ConsoleMarker.Boot("freshness")).Where(l => l.At > previousRound && l.At <= failed.At).Select(l => Trim(l.Line)).ToList();
            bool kexeced = machine.Find(ConsoleMarker.Boot("kexec")) is not null;
            var parsed = ConsoleLine.TryParse(failed.Line);
            string? reason = parsed?.Field("reason");
            bool refused = !kexeced && reason == attack.ExpectedReason;
            previousRound = failed.At;
            rounds.Results.Add(new AttackResult(attack.Name, attack.Served, refused, Trim(failed.Line), signatures)
            {
                Stage = parsed?.Field("stage"), Reason = reason, Freshness = freshness,
            });
            lab.Say($"      {relayName} {(refused ? "REFUSED" : $"did NOT refuse it for {attack.ExpectedReason}")}: {Trim(failed.Line)}");
            foreach (string line in signatures.Concat(freshness))
                lab.Say($"        {line}");
            if (kexeced)
                throw new LabException($"{relayName} kexec'd during attack {attack.Name}; console {machine.ConsoleLog}");
            rounds.OthersServing &= lab.PingOthers(relayName).All(other => other.Ping);
        }
    }

    /// <summary>Step 4: the same boot's next round must boot the genuine package; staff deploy it back.</summary>
    static async Task<bool> RecoverAsync(LabOperator lab, string relayName, int index, LabMachine machine, string genuine, CancellationToken ct)
    {
        var boot = await lab.WaitBootAsync(machine, ct);
        if (boot.VerifiedSha256 != genuine)
            throw new LabException($"{relayName} booted {boot.VerifiedSha256}, not the genuine package {genuine}");
        lab.Say($"      {relayName}: the same boot's next round booted the genuine package and enrolled as {boot.EnrolledState}");
        var (_, handshake, ping, _) = await lab.RedeployAsync(index, boot, "lab attack: recovered", ct);
        lab.Say($"      {relayName} serving again: handshake {(handshake ? "done" : "NONE")}, ping {(ping ? "answered" : "NOT answered")}");
        return handshake && ping;
    }

    /// <summary>
    /// The seized provisioning server: it serves what its disk holds and publishes under whatever policy the attacker
    /// likes. <see cref="RestoreAsync"/> puts it back as it was, also when a round fails or is interrupted, so the lab
    /// stays usable.
    /// </summary>
    sealed class SeizedServer
    {
        readonly FileStore store;
        readonly string genuine;
        readonly Sha256Digest genuineDigest;
        readonly StoredObject genuineObject;
        readonly string trustDirectory;
        readonly byte[] attackerArchive;
        readonly string ns;
        readonly System.Net.IPAddress relay;
        readonly string fleetTls;
        LabTicketInterceptor? interceptor;
        PackageRecord? originalRecord;
        byte original;
        bool flipped;

        public SeizedServer(FileStore store, string genuine, string trustDirectory, byte[] attackerArchive, string ns, System.Net.IPAddress relay,
            string fleetTls)
        {
            this.store = store;
            this.genuine = genuine;
            this.trustDirectory = trustDirectory;
            this.attackerArchive = attackerArchive;
            this.ns = ns;
            this.relay = relay;
            this.fleetTls = fleetTls;
            genuineDigest = Sha256Digest.TryParse(genuine, out var g) ? g : throw new LabException("bad package digest in state");
            genuineObject = store.FindObject(genuineDigest)
                            ?? throw new LabException($"the genuine package {genuine} is not in the provisioning store");
            FlipOffset = genuineObject.Length / 2;
        }

        /// <summary>The byte of the genuine archive the tampering attack changes.</summary>
        public long FlipOffset { get; }

        public void FlipByte()
        {
            using var file = File.OpenHandle(genuineObject.PhysicalPath, FileMode.Open, FileAccess.ReadWrite);
            byte[] one = new byte[1];
            RandomAccess.Read(file, one, FlipOffset);
            original = one[0];
            one[0] ^= 0x20;
            RandomAccess.Write(file, one, FlipOffset);
            flipped = true;
        }

        /// <summary>From now on the attacked relay's connections to the controller go through the man in the middle, which
        /// records the tickets the real controller issues (replayed-ticket needs one from an earlier round).</summary>
        public void Intercept() => interceptor ??= LabTicketInterceptor.Start(ns, relay, fleetTls);

        /// <summary>The man in the middle answers with a recorded ticket from now on.</summary>
        public void Replay()
        {
            if (interceptor is not { Recorded: > 0 })
                throw new LabException("replayed-ticket: no ticket was recorded in the earlier rounds (did the relay ask the controller for one?)");
            interceptor.Replaying = true;
        }

        /// <summary>`stable` → the genuine package (the replayed-ticket round serves it: only the ticket is stale).</summary>
        public async Task ServeGenuineAsync(CancellationToken token)
        {
            await RestoreTicketedAsync(token);
            await MoveStableAsync(genuineDigest, "lab attack: the genuine package, under a replayed ticket", token);
        }

        /// <summary>
        /// stboot fetches the package its ticket names content-addressed first (<c>/ospkg/HEX.json</c> beside the channel), so the
        /// attacker answers that path too: the genuine package's record now names the descriptor of <paramref name="served"/>
        /// (which names its archive). Restored by <see cref="RestoreTicketedAsync"/>.
        /// </summary>
        async Task PoisonTicketedAsync(Sha256Digest served, CancellationToken token)
        {
            var genuineRecord = await store.FindPackageAsync(genuineDigest, token)
                                ?? throw new LabException($"the genuine package {genuine} has no record in the provisioning store");
            var servedRecord = await store.FindPackageAsync(served, token)
                               ?? throw new LabException($"the attacker's package {served.Hex} has no record in the provisioning store");
            originalRecord ??= genuineRecord;
            await store.PutPackageAsync(originalRecord with { DescriptorSha256 = servedRecord.DescriptorSha256 }, token);
        }

        async Task RestoreTicketedAsync(CancellationToken token)
        {
            if (originalRecord is null)
                return;
            await store.PutPackageAsync(originalRecord, token);
            originalRecord = null;
        }

        /// <summary>Stores an older, genuinely signed release (verified under the server's own trust policy) and points
        /// `stable` at it, forced past the server's no-downgrade rule: the server is the attacker's.</summary>
        public async Task ServeOlderAsync(byte[] descriptor, byte[] archive, CancellationToken token)
        {
            var published = await Core(TrustPolicyVerifier.FromDirectory(trustDirectory)).PublishAsync(descriptor, new MemoryStream(archive), null, "attacker", token);
            if (!Sha256Digest.TryParse(published.Package.ArchiveSha256, out var older))
                throw new LabException("the provisioning store returned a bad digest");
            await MoveStableAsync(older, "lab attack: rolled back to an older genuine release", token);
            await PoisonTicketedAsync(older, token);
        }

        Task MoveStableAsync(Sha256Digest digest, string reason, CancellationToken token) =>
            Core(TrustPolicyVerifier.FromDirectory(trustDirectory)).MoveChannelAsync("stable", digest, "attacker", force: true, reason: reason, token);

        ProvisioningCore Core(TrustPolicyVerifier verifier) =>
            new(store, verifier, TimeProvider.System, new ProvisioningLimits(), publicBaseUrl: null);

        public void RestoreByte()
        {
            if (!flipped)
                return;
            using var file = File.OpenHandle(genuineObject.PhysicalPath, FileMode.Open, FileAccess.ReadWrite);
            RandomAccess.Write(file, new[] { original }, FlipOffset);
            flipped = false;
        }

        public async Task RestoreAsync(CancellationToken token)
        {
            if (interceptor is not null)
            {
                await interceptor.DisposeAsync();
                interceptor = null;
            }
            if (flipped)
                RestoreByte();
            await RestoreTicketedAsync(token);
            if ((await store.FindChannelAsync("stable", token))?.ArchiveSha256 != genuine)
                await new ProvisioningCore(store, TrustPolicyVerifier.FromDirectory(trustDirectory),
                    TimeProvider.System, new ProvisioningLimits(), publicBaseUrl: null).MoveChannelAsync("stable", genuineDigest, "lab attack (restore)",
                    force: true, reason: "lab attack: back from the attacker's build (which claimed a newer release)", token);
        }

        public async Task PublishAsAttackerAsync(byte[] descriptor, VerificationPolicy policy, CancellationToken token)
        {
            var core = new ProvisioningCore(store, new TrustPolicyVerifier(policy), TimeProvider.System, new ProvisioningLimits(), publicBaseUrl: null);
            await core.PublishAsync(descriptor, new MemoryStream(attackerArchive), "stable", "attacker", token);
            await PoisonTicketedAsync(Sha256Digest.Of(attackerArchive), token);
        }
    }

    /// <summary>A console line without its program prefix ("FAILED t=… stage=…"), at most 400 characters.</summary>
    static string Trim(string line)
    {
        string text = ConsoleLine.TryParse(line) is { } parsed ? parsed.ToString()[(parsed.Program.Length + 2)..] : line.Trim();
        return text.Length > 400 ? text[..400] + "…" : text;
    }
}

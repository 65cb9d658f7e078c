using System.Net;
using System.Net.Sockets;
using Tabula.Fleet.Protocol;
using Tabula.Packaging.Crypto;
using Tabula.Relay.Attest;
using Tabula.Relay.Firewall;
using Tabula.Relay.Fleet;
using Tabula.Relay.Serving;
using Tabula.Relay.Sync;
using Tabula.WireGuard;
using Tabula.WireGuard.Keys;

namespace Tabula.Relay;

/// <summary>What the agent needs once the machine is up; the same whether the device is kernel WireGuard or wireguard-go.</summary>
public sealed record RelayAgentOptions(byte[] IdentityKey, string EnrollmentToken, string PackageDigest)
{
    public TimeSpan HealthInterval { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan AppliedInterval { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan StaffPollInterval { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>Checked with every health report; a violation takes the relay out of service (see Machine.Mounts.MachineMounts.Check).</summary>
    public Func<IReadOnlyList<string>>? AmnesiaViolations { get; init; }
    /// <summary>A peer with an endpoint and no handshake for this long is forgotten (<see cref="EndpointAmnesia"/>).</summary>
    public TimeSpan EndpointIdle { get; init; } = TimeSpan.FromMinutes(3);
    public TimeSpan EndpointSweepInterval { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Flushes a removed device's connections (on a relay: <see cref="Firewall.ConntrackFlush"/>); none when null.</summary>
    public IConnectionFlush? ConnectionFlush { get; init; }
    /// <summary>Where egress (NAT, isolation, in-tunnel DNS) is applied; null: the agent only serves WireGuard.</summary>
    public RelayEgressOptions? Egress { get; init; }
    /// <summary>How often the egress stage re-reads the fleet's config (and re-applies what changed) once applied.</summary>
    public TimeSpan EgressInterval { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>The pause before an egress stage that failed is tried again.</summary>
    public TimeSpan EgressRetry { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>What stboot handed over about this boot's freshness (issue 16), reported at every enrollment; null: none.</summary>
    public FreshnessReport? Freshness { get; init; }
    /// <summary>
    /// The most peers the agent puts on the WireGuard device: kernel WireGuard's 2^20 by default (wireguard-go holds 2^16).
    /// Counted and enforced by the agent itself (<see cref="PeerSync"/>); past it the apply is partial and reported.
    /// </summary>
    public int PeerLimit { get; init; } = PeerCapacity.KernelMaxPeers;
    /// <summary>
    /// Reboots the machine through firmware (issue 18, a reboot command): on a relay reboot(2) with RB_AUTOBOOT into stboot
    /// (<see cref="Tabula.Linux.Reboot.Restart"/>), which never returns; null: the agent does not act on reboot commands (it
    /// still checks and answers them). Tests record the call.
    /// </summary>
    public Func<CancellationToken, Task>? Reboot { get; init; }
    /// <summary>The pause before the command poll is tried again after a failure.</summary>
    public TimeSpan CommandRetry { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>
    /// Attestation (issue 19): the TPM, whether it is required, and the in-tunnel service; null: the agent enrolls without
    /// evidence and serves no attestation (an agent on a machine stboot did not hand a TPM to).
    /// </summary>
    public RelayAttestationOptions? Attestation { get; init; }
}

/// <summary>
/// The relay's life after boot: a fresh WireGuard key pair in RAM → enroll (signed nonce) → wait until staff provision
/// the machine → bring the device up with the controller's port and gateway addresses (the private key is then zeroed:
/// only the kernel keeps it) → follow the peer stream, report the applied revision (coalesced, once a second) and
/// aggregate health. A refused relay token (a newer enrollment, a controller that lost it) means enrolling again with
/// the same key; a lost controller means serving on with what the device has and retrying.
/// <para>
/// With a TPM (issue 19, docs/attestation.md), before it enrolls: the key's SHA-256 goes into PCR 14 and the event log, an
/// AK is made (<see cref="RelayTpm"/>); the nonce request names the EK certificate and AK, the controller's challenge is
/// answered with TPM2_ActivateCredential and the enrollment carries a quote over SHA-256(nonce ‖ key) with the log. While
/// serving, the in-tunnel attestation service (<see cref="AttestationServer"/>) answers customers on the gateway addresses.
/// </para>
/// </summary>
public sealed class RelayAgent(FleetClient fleet, IRelayDevice device, RelayAgentOptions options, RelayLog log, TimeProvider time)
{
    readonly RelayEgress? egress = options.Egress is null ? null : new RelayEgress(options.Egress, device.Name);
    /// <summary>When this agent was made: the agent is PID 1 of the relay OS, so its uptime is the boot's (health reports).</summary>
    readonly DateTimeOffset started = time.GetUtcNow();

    public PeerSync Sync { get; } = new(device.Control, fleet, log, time, options.ConnectionFlush, options.PeerLimit);
    EndpointAmnesia? amnesia;
    public EndpointAmnesia Amnesia => amnesia ??= new(device.Control, Sync, options.EndpointIdle, time);
    public string? MachineId { get; private set; }
    /// <summary>This boot's WireGuard public key (published in the relay list; not a secret).</summary>
    public byte[] PublicKey { get; private set; } = [];
    public string State { get; private set; } = "starting";
    public bool Serving { get; private set; }
    /// <summary>What this boot accepted of reboot commands (issue 18): the key learned at enrollment, the last sequence, nonces.</summary>
    public RebootCommandGuard Commands { get; } = new();
    /// <summary>Set once a reboot command was accepted: the drain runs, then the machine reboots.</summary>
    public RebootCommandPayload? AcceptedReboot { get; private set; }

    /// <summary>The whole run's token: an accepted reboot outlives a serving loop that ends (a stream error) during its drain.</summary>
    CancellationToken runToken;

    /// <summary>This boot's TPM once its work is done (null: none, or attestation off).</summary>
    public IRelayTpm? Tpm { get; private set; }
    /// <summary>The controller's verdict at the last enrollment (null: it sent none).</summary>
    public AttestationOutcome? Attestation { get; private set; }
    /// <summary>The in-tunnel attestation service while serving (null: not running).</summary>
    public AttestationServer? AttestationService { get; private set; }
    byte[]? akCertificate;

    public async Task RunAsync(CancellationToken ct)
    {
        runToken = ct;
        var privateKey = WireGuardKey.GeneratePrivateKey();
        try
        {
            using (var publicKey = privateKey.DerivePublicKey())
                PublicKey = publicKey.Bytes.ToArray();
            if (options.Attestation is { } attestation)
                await OpenTpmAsync(attestation, ct);
            while (!ct.IsCancellationRequested)
            {
                await EnrollAsync(ct);
                try
                {
                    var config = await WaitForStaffAsync(ct);
                    if (!Serving)
                    {
                        var clock = RelayLog.Clock();
                        await device.UpAsync(privateKey, config, ct);
                        privateKey.Dispose();   // zeroed: the kernel (or wireguard-go) holds the only copy now
                        Serving = true;
                        log.StageDone("serve", clock.Elapsed, $"interface={device.Name} port={config.ListenPort} gateways={config.Ipv4Gateway},{config.Ipv6Gateway}"
                                                              + (device.Mtu is { } mtu ? $" mtu={mtu}" : ""));
                    }
                    await ServeAsync(config, ct);
                }
                catch (FleetCallException e) when (e.NeedsEnrollment)
                {
                    log.Note("enroll", $"the controller refused the relay token ({e.Code}); enrolling again");
                }
            }
        }
        finally
        {
            privateKey.Dispose();
            if (egress is not null)
                await egress.DisposeAsync();   // the resolver stops, the table goes (a stopped agent forwards nothing)
            (Tpm as IDisposable)?.Dispose();
            Tpm = null;
        }
    }

    /// <summary>
    /// The attest stage: this boot's TPM work for the fresh key (<see cref="RelayAttestationOptions.Open"/>). No TPM: under
    /// <see cref="RelayAttestationMode.Optional"/> the agent goes on without (noted), under Required it reports and tries again,
    /// and so does a TPM that fails, in either mode (a machine stboot measured on has one; a broken one is worth a report).
    /// </summary>
    async Task OpenTpmAsync(RelayAttestationOptions attestation, CancellationToken ct)
    {
        while (true)
        {
            var clock = RelayLog.Clock();
            RelayException failure;
            try
            {
                var tpm = attestation.Open(PublicKey);
                if (tpm is not null)
                {
                    Tpm = tpm;
                    log.StageDone("attest", clock.Elapsed, $"ak=rsa2048 pcr14=wireguard-key log_events={(tpm as RelayTpm)?.Events.ToString() ?? "?"} mode={attestation.Mode.ToString().ToLowerInvariant()}");
                    return;
                }
                if (attestation.Mode == RelayAttestationMode.Optional)
                {
                    log.Note("attest", "no TPM (/dev/tpmrm0, /dev/tpm0): enrolling without evidence");
                    return;
                }
                failure = new RelayException("attest", RelayFailure.NoTpm, "no TPM (/dev/tpmrm0, /dev/tpm0), and stboot measured this boot: not enrolling without evidence");
            }
            catch (Exception e) when (e is Tabula.Tpm.TpmException or Tabula.Linux.LinuxException)
            {
                failure = new RelayException("attest", RelayFailure.TpmFailed, e.Message, e);
            }
            log.StageFailed(failure.Stage, failure.ReasonName, $"{failure.Detail}; retrying in {attestation.Retry.TotalSeconds:0}s");
            await Task.Delay(attestation.Retry, time, ct);
        }
    }

    /// <summary>The evidence of one enrollment: the answer to the controller's challenge, a quote over SHA-256(nonce ‖ key), the log.</summary>
    AttestationEvidence Evidence(IRelayTpm tpm, byte[] nonce, CredentialChallenge? challenge)
    {
        byte[]? answer = null;
        try
        {
            if (challenge is { CredentialBlob: { } blob, EncryptedSecret: { } secret })
                answer = tpm.Activate(Convert.FromBase64String(blob), Convert.FromBase64String(secret));
        }
        catch (FormatException) { }
        if (answer is null)
            log.Note("attest", challenge is null ? "the controller sent no credential challenge" : "the TPM refused the controller's credential challenge");
        var (attest, signature) = tpm.Quote(AttestationBinding.QualifyingData(nonce, PublicKey));
        return new AttestationEvidence(Convert.ToBase64String(tpm.EkCertificate), Convert.ToBase64String(tpm.AkPublic),
            Convert.ToBase64String(answer ?? []), Convert.ToBase64String(attest), Convert.ToBase64String(signature), Convert.ToBase64String(tpm.EventLog()));
    }

    async Task EnrollAsync(CancellationToken ct)
    {
        var backoff = new Backoff();
        while (true)
        {
            var clock = RelayLog.Clock();
            try
            {
                var tpm = Tpm;
                var keys = tpm is null ? null : new AttestationKeys(Convert.ToBase64String(tpm.EkCertificate), Convert.ToBase64String(tpm.AkPublic));
                var (nonce, challenge) = await fleet.NonceAsync(options.EnrollmentToken, keys, ct);
                var evidence = tpm is null ? null : Evidence(tpm, nonce, challenge);
                byte[] identityPublic = Ed25519.PublicKeyOf(options.IdentityKey);
                byte[] signature = Ed25519.Sign(options.IdentityKey, Enrollment.Message(nonce, PublicKey, options.PackageDigest));
                var reply = await fleet.EnrollAsync(options.EnrollmentToken, new EnrollBody(
                    Convert.ToBase64String(identityPublic), Convert.ToBase64String(PublicKey), options.PackageDigest,
                    Convert.ToHexStringLower(nonce), Convert.ToBase64String(signature), options.Freshness, evidence), ct);
                fleet.RelayToken = reply.RelayToken;
                MachineId = reply.MachineId;
                LearnCommandKey(reply.CommandKey);
                State = reply.State;
                Attestation = reply.Attestation;
                akCertificate = null;
                try { if (reply.Attestation?.AkCertificate is { } c) akCertificate = Convert.FromBase64String(c); }
                catch (FormatException) { }
                string verdict = reply.Attestation is not { } a ? "" : a.FailedStep is null ? $" attestation={a.Status}"
                    : $" attestation={a.Status} step={a.FailedStep}";
                log.StageDone("enroll", clock.Elapsed, $"machine={reply.MachineId} state={reply.State}{verdict}");
                if (reply.Attestation is { FailedStep: not null } failed)
                    log.Note("attest", $"the controller refused the evidence at {failed.FailedStep}: {failed.Detail}");
                log.Fingerprint(reply.MachineId, Enrollment.Fingerprint(identityPublic, PublicKey), reply.State);
                return;
            }
            catch (Exception e) when (e is FleetCallException or RelayException or Tabula.Tpm.TpmException)
            {
                var delay = backoff.Next();
                string reason = e switch { FleetCallException f => f.Code, RelayException r => r.ReasonName, _ => nameof(RelayFailure.TpmFailed) };
                log.StageFailed("enroll", reason, $"{e.Message}; retrying in {delay.TotalSeconds:0.0}s");
                await Task.Delay(delay, time, ct);
            }
        }
    }

    async Task<RelayConfigView> WaitForStaffAsync(CancellationToken ct)
    {
        var waited = RelayLog.Clock();
        var lastNote = TimeSpan.Zero;
        while (true)
        {
            try
            {
                var config = await fleet.ConfigAsync(ct);
                State = config.State;
                if (config.State is "provisioned" or "deployed" or "draining")
                    return config;
                if (waited.Elapsed - lastNote >= TimeSpan.FromSeconds(30) || lastNote == TimeSpan.Zero)
                {
                    log.Waiting(config.State, waited.Elapsed);
                    lastNote = waited.Elapsed + TimeSpan.FromTicks(1);
                }
            }
            catch (RelayException e)
            {
                log.StageFailed("wait", e.ReasonName, e.Detail);
            }
            await Task.Delay(options.StaffPollInterval, time, ct);
        }
    }

    async Task ServeAsync(RelayConfigView config, CancellationToken ct)
    {
        Sync.Pools = TunnelPools.FromGateways(config.Ipv4Gateway, config.Ipv6Gateway);   // peers outside them are never installed
        AttestationService = StartAttestationService(config);
        try
        {
            await ServeTasksAsync(config, ct);
        }
        finally
        {
            if (AttestationService is { } service)
                await service.DisposeAsync();
            AttestationService = null;
            if (egress is not null) egress.AttestationPort = null;
        }
    }

    /// <summary>
    /// The in-tunnel attestation service on the gateway addresses (issue 19), when this boot has a TPM; the egress table
    /// opens its port only while it runs. A service that cannot bind is reported and left off: WireGuard serves regardless.
    /// </summary>
    AttestationServer? StartAttestationService(RelayConfigView config)
    {
        if (Tpm is not { } tpm || options.Attestation is not { ServicePort: > 0 } attestation) return null;
        var clock = RelayLog.Clock();
        try
        {
            var gateways = new[] { config.Ipv4Gateway, config.Ipv6Gateway }
                .Select(g => IPAddress.Parse(g.AsSpan(0, g.IndexOf('/') is var slash and >= 0 ? slash : g.Length)))
                .Select(a => new IPEndPoint(a, attestation.ServicePort)).ToList();
            var service = AttestationServer.Start(gateways, tpm, () => PublicKey, () => akCertificate, time, attestation.Sockets);
            if (egress is not null) egress.AttestationPort = attestation.ServicePort;
            log.StageDone("attest-service", clock.Elapsed, $"port={attestation.ServicePort} gateways={gateways.Count}");
            return service;
        }
        catch (Exception e) when (e is SocketException or FormatException or ArgumentException)
        {
            log.StageFailed("attest-service", nameof(RelayFailure.BadConfig), "not started: " + e.Message);
            return null;
        }
    }

    async Task ServeTasksAsync(RelayConfigView config, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        Task[] tasks = [Sync.RunAsync(stop.Token), ReportAppliedAsync(stop.Token), ReportHealthAsync(stop.Token), CommandsAsync(stop.Token),
            Amnesia.RunAsync(options.EndpointSweepInterval, log, stop.Token), .. egress is null ? [] : new[] { EgressAsync(config, stop.Token) }];
        var first = await Task.WhenAny(tasks);
        await stop.CancelAsync();
        foreach (var task in tasks)
        {
            try { await task; }
            catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
            catch when (task != first) { }   // the one that ended first decides (re-enroll, amnesia)
        }
        await first;
    }

    /// <summary>
    /// The egress stage, after wg0 has its gateway addresses: applied from the config the device came up with, then
    /// again from a fresh config every <see cref="RelayAgentOptions.EgressInterval"/> (an unchanged table is left
    /// alone). A refusal is reported with its typed reason and retried; wg0 keeps serving meanwhile (a public IPv6
    /// address from SLAAC may take a while to appear on the uplink).
    /// </summary>
    async Task EgressAsync(RelayConfigView config, CancellationToken ct)
    {
        bool first = true;
        while (true)
        {
            var clock = RelayLog.Clock();
            TimeSpan pause = options.EgressInterval;
            try
            {
                if (!first) config = await fleet.ConfigAsync(ct);
                var outcome = egress!.Apply(config);
                if (outcome.Changed)
                    log.StageDone("egress", clock.Elapsed, outcome.Detail);
                first = false;
            }
            catch (RelayException e)
            {
                log.StageFailed(e.Stage, e.ReasonName, e.Detail);
                pause = options.EgressRetry;
            }
            catch (FleetCallException e) when (!e.NeedsEnrollment)
            {
                pause = options.EgressRetry;
            }
            await Task.Delay(pause, time, ct);
        }
    }

    async Task ReportAppliedAsync(CancellationToken ct)
    {
        long reported = -1;
        while (true)
        {
            await Task.Delay(options.AppliedInterval, time, ct);
            long revision = Sync.AppliedRevision;
            if (revision == reported) continue;
            try
            {
                await fleet.AppliedAsync(revision, ct);
                reported = revision;
            }
            catch (RelayException) { }   // the stream's own retry reports the outage; try again next second
            catch (FleetCallException e) when (!e.NeedsEnrollment) { }
        }
    }

    async Task ReportHealthAsync(CancellationToken ct)
    {
        int reports = 0;
        while (true)
        {
            if (options.AmnesiaViolations?.Invoke() is { Count: > 0 } violations)
                throw new RelayException("amnesia", RelayFailure.AmnesiaViolation, string.Join("; ", violations));
            var state = await device.Control.GetAsync(ct);
            int peerCount, handshakes, connected;
            ulong rx = 0, tx = 0;
            using (state)
            {
                var now = time.GetUtcNow();
                var recent = now - TimeSpan.FromMinutes(1);
                // WireGuard rekeys every 2 minutes while traffic flows: a handshake in the last 3 means a connected peer.
                var window = now - TimeSpan.FromMinutes(3);
                peerCount = state.Peers.Count;
                handshakes = state.Peers.Count(p => p.LastHandshake is { } at && at >= recent);
                connected = state.Peers.Count(p => p.LastHandshake is { } at && at >= window);
                foreach (var peer in state.Peers)
                {
                    rx += peer.ReceiveBytes;
                    tx += peer.TransmitBytes;
                }
            }
            var (firewall, dnsAnswered) = egress?.Counters() ?? (new EgressCounters(0, 0, 0, 0, 0), 0);
            if (reports++ % 10 == 0)
            {
                log.Health(peerCount, handshakes, rx, tx, Sync.Counters, Amnesia.Forgotten, Sync.Status);
                if (egress is not null)
                    log.EgressCounters(firewall.ForwardedPackets, firewall.ForwardedBytes, firewall.IsolationDroppedPackets, firewall.NatEntries, dnsAnswered);
            }
            var sync = Sync.Status;
            try
            {
                await fleet.HealthAsync(new HealthReport(peerCount, handshakes, (long)Math.Min(rx, long.MaxValue), (long)Math.Min(tx, long.MaxValue),
                    Sync.AppliedRevision, Clamp(firewall.ForwardedPackets), Clamp(firewall.ForwardedBytes), Clamp(firewall.IsolationDroppedPackets),
                    firewall.NatEntries, dnsAnswered, sync.Wanted, sync.Applied, sync.Pending, sync.OutsidePool, sync.Partial, sync.PartialReason,
                    connected, (long)(time.GetUtcNow() - started).TotalSeconds, RelayMachine.Version), ct);
            }
            catch (RelayException) { }
            catch (FleetCallException e) when (!e.NeedsEnrollment) { }
            await Task.Delay(options.HealthInterval, time, ct);
        }
    }

    static long Clamp(ulong value) => (long)Math.Min(value, long.MaxValue);

    /// <summary>
    /// The key reboot commands must be signed with, from the enrollment answer. When stboot handed over a boot ticket, the key must
    /// verify it (stboot checked it against its pinned ticket_root.pem): a controller impostor holding only the TLS key cannot
    /// swap in its own. Without a ticket (no freshness policy) the pinned TLS connection is all there is.
    /// </summary>
    void LearnCommandKey(string? commandKey)
    {
        byte[]? key = null;
        Tabula.Packaging.BootTicket? ticket = null;
        try
        {
            if (commandKey is not null) key = Convert.FromBase64String(commandKey);
            if (options.Freshness?.Ticket is { } t) ticket = Tabula.Packaging.BootTicket.Parse(Convert.FromBase64String(t));
        }
        catch (Exception e) when (e is FormatException or Tabula.Packaging.BootTicketException) { }
        if (!Commands.Learn(key, ticket))
            log.Note("command", key is null ? "the controller sent no command key: reboot commands are refused"
                : "the controller's command key does not verify this boot's ticket: reboot commands are refused");
    }

    /// <summary>
    /// Reboot commands (issue 18): long-polls the controller for this boot's command, checks it (<see cref="RebootCommandGuard"/>:
    /// signature, machine, boot, expiry, sequence and nonce) and answers. An accepted one: keep serving for its drain period (the
    /// controller lists the relay inactive; no connection is closed), then reboot through firmware into stboot. No shell, no SSH.
    /// </summary>
    async Task CommandsAsync(CancellationToken ct)
    {
        while (true)
        {
            byte[]? command;
            try
            {
                command = await fleet.CommandAsync(Commands.LastSequence, ct);
            }
            catch (RelayException) { await Task.Delay(options.CommandRetry, time, ct); continue; }
            catch (FleetCallException e) when (!e.NeedsEnrollment) { await Task.Delay(options.CommandRetry, time, ct); continue; }
            if (command is null) continue;
            RebootCommandPayload payload;
            try
            {
                payload = Commands.Check(command, MachineId ?? "", PublicKey, time.GetUtcNow());
                Commands.Accept(payload);
            }
            catch (RebootCommandException e)
            {
                log.Note("command", $"reboot command refused reason={e.Reason.Name()} detail=\"{e.Detail}\"");
                long sequence = 0;
                try { sequence = RebootCommand.Parse(command).Payload.Sequence; } catch (RebootCommandException) { }
                if (sequence > 0) await AnswerAsync(sequence, false, e.Reason.Name(), ct);
                if (e.Reason is RebootRefusal.Replayed or RebootRefusal.Machine or RebootRefusal.Boot) continue;
                await Task.Delay(options.CommandRetry, time, ct);
                continue;
            }
            AcceptedReboot = payload;
            log.Note("command", $"reboot command accepted sequence={payload.Sequence} rollout={payload.RolloutId} target={payload.TargetSha256[..12]}… " +
                                $"release={payload.TargetRelease} drain={payload.DrainSeconds}s");
            await AnswerAsync(payload.Sequence, true, null, ct);
            _ = DrainThenRebootAsync(payload, runToken);
        }
    }

    async Task AnswerAsync(long sequence, bool accepted, string? refusal, CancellationToken ct)
    {
        try { await fleet.CommandAckAsync(sequence, accepted, refusal, ct); }
        catch (Exception e) when (e is RelayException or FleetCallException) { log.Note("command", $"answer to command {sequence} not delivered: {e.Message}"); }
    }

    async Task DrainThenRebootAsync(RebootCommandPayload payload, CancellationToken ct)
    {
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(payload.DrainSeconds), time, ct);
            log.Note("command", $"drain over after {payload.DrainSeconds}s: rebooting into stboot");
            if (options.Reboot is { } reboot) await reboot(ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }
}

using System.Diagnostics;
using Tabula.Packaging;
using static Tabula.Lab.LabRunner;

namespace Tabula.Lab;

/// <summary>What `lab upgrade` did.</summary>
/// <param name="Release">The new release number (r2 after the first upgrade).</param>
/// <param name="PackageSha256">SHA-256 of the new package's archive, now on `stable`.</param>
/// <param name="PackageBytes">Its size.</param>
/// <param name="PackageSigners">Who signed it and how many signatures verified.</param>
/// <param name="Relays">One entry per relay, in the order they were rolled.</param>
/// <param name="TookSeconds">The whole upgrade.</param>
public sealed record LabUpgradeSummary(int Release, string PackageSha256, long PackageBytes, string PackageSigners,
    IReadOnlyList<UpgradedRelay> Relays, double TookSeconds);

/// <summary>One relay's roll.</summary>
/// <param name="Name">relay-N.</param>
/// <param name="MachineId">Its machine id (the same before and after: the identity key is in its host configuration).</param>
/// <param name="BootedSha256">The package digest stboot verified and kexec'd.</param>
/// <param name="EnrolledState">Its state when it enrolled again (draining: the package was allowed, so it served without staff).</param>
/// <param name="Fingerprint">Its new fingerprint (a new WireGuard key every boot).</param>
/// <param name="DrainSeconds">Drain → power off (clients move away meanwhile).</param>
/// <param name="OutOfServiceSeconds">Power off → the first ping answered through its tunnel again.</param>
/// <param name="KexecAt">Power on → stboot's kexec into the new package.</param>
/// <param name="EnrolledAt">Power on → the agent enrolled.</param>
/// <param name="Handshake">The customer's client completed a handshake with the relay's new key.</param>
/// <param name="Ping">A ping through the tunnel was answered.</param>
/// <param name="OthersServing">Every other relay answered a ping through its tunnel while this one was off.</param>
/// <param name="Stboot">stboot's own timeline of this boot.</param>
public sealed record UpgradedRelay(string Name, string MachineId, string BootedSha256, string EnrolledState, string Fingerprint,
    double DrainSeconds, double OutOfServiceSeconds, double KexecAt, double EnrolledAt, bool Handshake, bool Ping, bool OthersServing,
    IReadOnlyDictionary<string, long> Stboot);

/// <summary>
/// One run of `lab upgrade`: a new release of the relay package is built, signed by two signers (signer2 and signer3: any
/// two of the three will do), allowed in the fleet, published to `stable` with `tabula publish` (the provisioning server
/// verifies it against its trust policy), and the fleet rolls one machine at a time: drain → power off → power on →
/// stboot verifies and boots the new package → the agent enrolls again, keeps its state because the package is allowed,
/// and serves → staff deploy it back into the relay list → the customer's client reconnects.
/// </summary>
internal sealed class LabUpgrade(LabActionOptions options)
{
    public async Task<LabUpgradeSummary> RunAsync(CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        using var lab = new LabOperator(options, "upgrade");
        int release = lab.State.Release + 1;
        lab.Say($"[1/3] release r{release}: a new relay OS package, signed by signer2 and signer3");
        var (root, signers) = LabSigning.LoadKeys(Path.Combine(lab.Directory, "keys"));
        string relayBinary = NativeBinaries.Find(NativeBinaries.Relay, m => lab.Say("      " + m));
        byte[] archive = BuildRelayArchive(relayBinary, lab.Kernel, lab.Summary.FleetCa, $"Tabula lab relay r{release}", release).Archive;
        byte[] descriptor = LabSigning.Sign(archive, [signers[1], signers[2]]);
        var verdict = LabSigning.Verify(descriptor, archive, root);
        if (!verdict.Accepted)
            throw new LabException($"release r{release} does not verify: {verdict.Summary}");
        string packages = Path.Combine(lab.Directory, "packages");
        string zipPath = Path.Combine(packages, $"relay-r{release}.zip"), jsonPath = Path.Combine(packages, $"relay-r{release}.json");
        File.WriteAllBytes(zipPath, archive);
        File.WriteAllBytes(jsonPath, descriptor);
        lab.Say($"      {archive.Length / 1e6:0.0} MB, sha256 {verdict.ArchiveSha256}; verified: {verdict.Summary}");

        lab.Say($"[2/3] allow r{release} in the fleet (relays that boot it keep their state), publish it to `stable`");
        lab.FleetCli("fleet", "packages", "allow", verdict.ArchiveSha256, "--reason", $"lab upgrade to r{release}");
        // Boot tickets name the class's current release: a relay that reboots from now on gets r{release}.
        lab.FleetCli("fleet", "releases", "set-current", "--class", MachineClass, "--digest", verdict.ArchiveSha256,
            "--release", release.ToString(System.Globalization.CultureInfo.InvariantCulture), "--reason", $"lab upgrade to r{release}");
        lab.TabulaInNamespace("publish", jsonPath, zipPath, "--server", $"https://{LabNetwork.HostAddress}:{ProvisioningPort}", "--channel", "stable",
            "--ca", Path.Combine(lab.Directory, "provisioning", "tls", "ca.pem"), "--token-file", ProvisioningTokenFile(lab.Directory));
        lab.State.Release = release;
        lab.Save(lab.Summary with
        {
            PackageSha256 = verdict.ArchiveSha256, PackageBytes = archive.Length,
            PackageSigners = $"{verdict.Valid} of {verdict.Found} valid, {verdict.Required} required (signer2, signer3)",
        });

        lab.Say($"[3/3] rolling {lab.Summary.Relays.Count} relay(s) one at a time: drain → power off → verified boot of r{release} → enroll → deploy → reconnect");
        var rolled = new List<UpgradedRelay>();
        for (int i = 0; i < lab.Summary.Relays.Count; i++)
            rolled.Add(await RollAsync(lab, i, verdict.ArchiveSha256, release, ct));
        // Every relay runs r{release}: the class's floor follows, so no ticket ever names an older release again.
        lab.FleetCli("fleet", "releases", "floor", "--class", MachineClass, "--min-release", release.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--reason", $"lab upgrade: every relay runs r{release}");
        lab.Say($"      floor of class {MachineClass} raised to r{release}");
        var summary = new LabUpgradeSummary(release, verdict.ArchiveSha256, archive.Length,
            $"{verdict.Valid} of {verdict.Found} valid, {verdict.Required} required (signer2, signer3)", rolled, Round(total.Elapsed));
        return summary;
    }

    static async Task<UpgradedRelay> RollAsync(LabOperator lab, int index, string digest, int release, CancellationToken ct)
    {
        var relay = lab.Summary.Relays[index];
        lab.Say($"      {relay.Name} ({relay.MachineId}):");
        var drain = Stopwatch.StartNew();
        lab.FleetCli("fleet", "machines", "drain", relay.MachineId, "--reason", $"lab upgrade to r{release}");
        lab.Say($"        drained: listed inactive, still serving for {lab.DrainGrace.TotalSeconds:0}s while clients move to other relays");
        await Task.Delay(lab.DrainGrace, ct);
        lab.PowerOff(relay.Name);
        double drainSeconds = Round(drain.Elapsed);
        var outage = Stopwatch.StartNew();
        lab.Say($"        powered off after {drainSeconds:0.0}s: its RAM, WireGuard key and peers are gone");
        var others = lab.PingOthers(relay.Name);
        foreach (var (name, ping) in others)
            lab.Say($"        meanwhile {name}: ping through its tunnel {(ping ? "answered" : "NOT answered")}");

        var machine = lab.PowerOn(index);
        try
        {
            lab.Say($"        powered on (QEMU pid {machine.Pid}, console {machine.ConsoleLog}); stboot fetches `stable`");
            var boot = await lab.WaitBootAsync(machine, ct);
            if (boot.VerifiedSha256 != digest)
                throw new LabException($"{relay.Name} booted package {boot.VerifiedSha256}, not release r{release} ({digest})");
            if (boot.MachineId != relay.MachineId)
                throw new LabException($"{relay.Name} enrolled as {boot.MachineId}, expected {relay.MachineId}");
            lab.Say($"        booted r{release} and enrolled again as {boot.EnrolledState}" +
                    (boot.EnrolledState == "awaiting" ? " (package not allowed: staff must deploy)" : " (package allowed: it serves without waiting for staff)") +
                    " with a new fingerprint (a new WireGuard key)");
            var (_, handshake, ping, servingAt) = await lab.RedeployAsync(index, boot, $"lab upgrade to r{release}: back in the relay list", ct);
            double outOfService = Round(outage.Elapsed);
            lab.Say($"        serving at {servingAt.TotalSeconds:0.0}s; the client switched to the new key: handshake {(handshake ? "done" : "NONE")}, " +
                    $"ping {(ping ? "answered" : "NOT answered")}; out of service {outOfService:0.0}s (power off → ping)");
            return new UpgradedRelay(relay.Name, relay.MachineId, boot.VerifiedSha256, boot.EnrolledState, boot.Fingerprint, drainSeconds, outOfService,
                Round(boot.KexecAt), Round(boot.EnrolledAt), handshake, ping, others.All(o => o.Ping), machine.StbootTimeline());
        }
        finally
        {
            machine.Dispose();
        }
    }
}

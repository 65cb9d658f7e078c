using Tabula.Machine.Init;
using Tabula.Machine.Modules;
using Tabula.Machine.Mounts;
using Tabula.Machine.Network;
using Tabula.Relay.Firewall;
using Tabula.Relay.Fleet;
using Tabula.Relay.Serving;
using Tabula.Relay.Settings;

namespace Tabula.Relay;

/// <summary>
/// PID 1 of the relay OS, on the machine layer: bring the RAM machine up (mounts through the amnesia gate, core dumps
/// off, the amnesia checks, coldplug of the image's modules, settings, network), each stage on the machine's
/// <see cref="StageRunner"/> (a failing stage is reported with its typed reason and retried after 5 s), then run the
/// agent. Nothing here returns.
/// </summary>
public sealed class RelayMachine(RelayLog log)
{
    public const string Version = "0.1";
    static readonly TimeSpan StagePause = TimeSpan.FromSeconds(5);

    readonly MachineMounts mounts = new("/", log.Amnesia) { Extra = [MachineMounts.Tmp] };
    readonly StageRunner runner = new(TimeProvider.System, Thread.Sleep);

    public void Run()
    {
        log.Started(Version);
        Stage("mount", () => $"{mounts.MountEssentials().Replace(',', ' ')} (no block device)");
        Stage("amnesia", () =>
        {
            mounts.DisableCoreDumps();
            var report = mounts.Check();
            mounts.Report(report);
            if (!report.Clean)
                throw new RelayException("amnesia", RelayFailure.AmnesiaViolation, "refusing to serve on a machine that could keep data");
            return report.Facts.Count + " checks passed";
        });
        Stage("modules", LoadModules);
        var settings = runner.UntilDone("settings", () =>
        {
            var loaded = RelaySettings.Load("/");
            return (loaded, $"fleet={string.Join(',', loaded.FleetUrls.Select(u => u.Authority))} ca={loaded.FleetCa.Count} package={loaded.PackageDigest[..12]}"
                            + $" measured={(loaded.Measurement is null ? "unknown" : loaded.Measurement.Measured ? "yes" : "no")} log_events={loaded.EventLog.Events.Count}");
        }, log, StagePause);
        var network = new MachineNetwork("/", log.Note);
        var setup = runner.UntilDone("network", () =>
        {
            var configured = network.Configure(settings.Host);
            return (configured, configured.Summary);
        }, log, StagePause);
        new DhcpLeaseKeeper(network, settings.Host, log.Note).Start(setup);
        // Router advertisements keep coming in once wg0 turns IPv6 forwarding on (a router ignores them unless 2):
        // the uplink's SLAAC address, which may be the relay's public IPv6, and its IPv6 default route stay.
        try { new Tabula.Linux.Sysctl().Write(RelayEgress.AcceptRa(setup.Nic), 2); }
        catch (Exception e) when (e is Tabula.Linux.LinuxException or IOException or UnauthorizedAccessException) { log.Note("network", "accept_ra=2 not set: " + e.Message); }

        using var fleet = new FleetClient(settings.FleetUrls, settings.FleetCa, TimeProvider.System, detail => log.Note("fleet", detail));
        var device = new KernelRelayDevice("wg0", "/");
        var agent = new RelayAgent(fleet, device, new RelayAgentOptions(settings.IdentityKey, settings.EnrollmentToken, settings.PackageDigest)
        {
            AmnesiaViolations = () => mounts.Check().Violations,
            Freshness = settings.Freshness,
            ConnectionFlush = new ConntrackFlush(),
            // Attestation (issue 19): the machine's TPM through the kernel's resource manager; stboot's log and policy as handed over.
            Attestation = new Attest.RelayAttestationOptions(
                settings.Measurement?.Measured == true ? Attest.RelayAttestationMode.Required : Attest.RelayAttestationMode.Optional,
                key => Tabula.Machine.Tpm.TpmDeviceTransport.TryOpen() is { } tpm ? Attest.RelayTpm.Open(tpm, settings.EventLog, key) : null),
            // A reboot command (issue 18), after its drain: reboot(2) RB_AUTOBOOT through firmware into stboot. Never returns.
            Reboot = _ =>
            {
                log.Note("command", "reboot(RB_AUTOBOOT)");
                Tabula.Linux.Reboot.Restart();
                return Task.CompletedTask;
            },
            // The controller's and the provisioning server's addresses, as this machine reaches them: never for customers.
            Egress = new RelayEgressOptions(setup.Nic)
            {
                ManagementEndpoints = RelayEgressOptions.EndpointsOf(
                    [.. settings.FleetUrls, .. settings.Host.OsPackagePointers.Select(p => Uri.TryCreate(p, UriKind.Absolute, out var u) ? u : null).OfType<Uri>()],
                    TimeSpan.FromSeconds(3)),
            },
        }, log, TimeProvider.System);
        while (true)
        {
            try
            {
                agent.RunAsync(CancellationToken.None).GetAwaiter().GetResult();
            }
            catch (RelayException e) when (e.Reason == RelayFailure.AmnesiaViolation)
            {
                log.StageFailed(e.Stage, e.ReasonName, e.Detail);
                TakeDown(device.Name);
                Park("the machine could keep data; it no longer serves");
            }
            catch (Exception e)
            {
                log.Fatal($"{e.GetType().Name}: {e.Message}");
                Thread.Sleep(StagePause);
            }
        }
    }

    /// <summary>A bring-up stage whose result is its console detail.</summary>
    void Stage(string name, Func<string> run) => runner.UntilDone(name, () => (0, run()), log, StagePause);

    /// <summary>
    /// The machine layer's coldplug: the image's modules that this machine's devices ask for, and those no device can
    /// ask for (wireguard). A module that fails shows up again where it is needed (no wireguard: wg0 cannot be created).
    /// </summary>
    static string LoadModules()
    {
        var result = new Coldplug("/", new LinuxModuleLoader()).Run();
        string failed = result.Failed.Count > 0 ? ": " + string.Join(", ", result.Failed.Select(f => $"{f.Module} ({f.Detail})")) : "";
        return $"{result.Counts}{failed} {result.Summary}";
    }

    static void TakeDown(string name)
    {
        try { RelayLink.Delete(name); }
        catch (Exception) { /* best effort: the park loop below keeps reporting */ }
    }

    void Park(string why)
    {
        while (true)
        {
            log.Note("parked", why);
            Thread.Sleep(TimeSpan.FromMinutes(1));
        }
    }
}

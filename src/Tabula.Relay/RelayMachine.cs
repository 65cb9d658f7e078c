using Tabula.Linux;
using Tabula.Machine.Network;
using Tabula.Relay.Amnesia;
using Tabula.Relay.Fleet;
using Tabula.Relay.Serving;
using Tabula.Relay.Settings;

namespace Tabula.Relay;

/// <summary>
/// PID 1 of the relay OS: bring the RAM machine up (mounts through the amnesia gate, core dumps off, checks, modules,
/// settings, network), then run the agent. A failing stage is reported on the console with its reason and retried
/// after a pause; nothing here returns.
/// </summary>
public sealed class RelayMachine(RelayLog log)
{
    public const string Version = "0.1";
    const string LoadOrder = "lib/modules/load-order";
    readonly AmnesiaGuards guards = new("/", log);

    public void Run()
    {
        log.Started(Version);
        Stage("mount", MountEssentials);
        Stage("amnesia", () =>
        {
            guards.DisableCoreDumps();
            var report = guards.Check();
            guards.Log(report);
            if (!report.Clean)
                throw new RelayException("amnesia", "violation", "refusing to serve on a machine that could keep data");
            return report.Facts.Count + " checks passed";
        });
        Stage("modules", LoadModules);
        RelaySettings? settings = null;
        Stage("settings", () =>
        {
            settings = RelaySettings.Load("/");
            return $"fleet={settings.FleetUrl.Authority} ca={settings.FleetCa.Count} package={settings.PackageDigest[..12]}";
        });
        var network = new MachineNetwork("/", log.Note);
        NetworkSetup? setup = null;
        Stage("network", () =>
        {
            setup = network.Configure(settings!.Host);
            return setup.Summary;
        });
        new DhcpLeaseKeeper(network, settings!.Host, log.Note).Start(setup!);

        using var fleet = new FleetClient(settings!.FleetUrl, settings.FleetCa, TimeProvider.System);
        var device = new KernelRelayDevice("wg0", "/");
        var agent = new RelayAgent(fleet, device, new RelayAgentOptions(settings.IdentityKey, settings.EnrollmentToken, settings.PackageDigest)
        {
            AmnesiaViolations = () => guards.Check().Violations,
        }, log, TimeProvider.System);
        while (true)
        {
            try
            {
                agent.RunAsync(CancellationToken.None).GetAwaiter().GetResult();
            }
            catch (RelayException e) when (e.Stage == "amnesia")
            {
                log.StageFailed("amnesia", e.Reason, e.Detail);
                TakeDown(device.Name);
                Park("the machine could keep data; it no longer serves");
            }
            catch (Exception e)
            {
                log.Fatal($"{e.GetType().Name}: {e.Message}");
                Thread.Sleep(TimeSpan.FromSeconds(5));
            }
        }
    }

    /// <summary>Runs a bring-up stage until it succeeds, reporting each failure and waiting 5 s between tries.</summary>
    void Stage(string name, Func<string> run)
    {
        for (int attempt = 1; ; attempt++)
        {
            var clock = RelayLog.Clock();
            try
            {
                string detail = run();
                log.StageDone(name, clock.Elapsed, detail);
                return;
            }
            catch (Exception e)
            {
                string reason = e switch
                {
                    RelayException r => r.Reason,
                    RelaySettingsException s => s.Reason.ToString().ToLowerInvariant(),
                    NetworkException n => n.Error.ToString(),
                    LinuxException l => l.Errno.ToString(),
                    _ => e.GetType().Name,
                };
                log.StageFailed(name, reason, $"{e.Message} (attempt {attempt}; retrying in 5s)");
                Thread.Sleep(TimeSpan.FromSeconds(5));
            }
        }
    }

    string MountEssentials()
    {
        foreach (var (source, target, type, flags) in new (string, string, string, MountFlags)[]
        {
            ("devtmpfs", "/dev", "devtmpfs", MountFlags.NoSetUid),
            ("proc", "/proc", "proc", MountFlags.NoSetUid | MountFlags.NoDevices | MountFlags.NoExecute),
            ("sysfs", "/sys", "sysfs", MountFlags.NoSetUid | MountFlags.NoDevices | MountFlags.NoExecute),
            ("tmpfs", "/run", "tmpfs", MountFlags.NoSetUid | MountFlags.NoDevices),
            ("tmpfs", "/tmp", "tmpfs", MountFlags.NoSetUid | MountFlags.NoDevices),
        })
        {
            try
            {
                guards.Mount(source, target, type, flags);
            }
            catch (LinuxException e) when (e.Errno == Errno.EBUSY) { }   // a retry after a partial first attempt
        }
        return "/dev /proc /sys /run /tmp (no block device)";
    }

    static string LoadModules()
    {
        int loaded = 0, present = 0;
        var failed = new List<string>();
        if (!File.Exists("/" + LoadOrder))
            return "no modules listed";
        foreach (string line in File.ReadLines("/" + LoadOrder))
        {
            string path = line.Trim();
            if (path.Length == 0) continue;
            try
            {
                using var file = File.OpenHandle(path);
                KernelModule.Load(file);
                loaded++;
            }
            catch (LinuxException e) when (e.Errno == Errno.EEXIST) { present++; }
            catch (Exception e) when (e is LinuxException or IOException or UnauthorizedAccessException)
            {
                failed.Add($"{Path.GetFileName(path)} ({e.Message})");
            }
        }
        // A missing module shows up again where it is needed (no wireguard → the device cannot be created).
        return $"loaded={loaded} already={present} failed={failed.Count}{(failed.Count > 0 ? ": " + string.Join(", ", failed) : "")}";
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

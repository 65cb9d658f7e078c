using Tabula.Boot;
using Tabula.Boot.Seams;
using Tabula.Boot.States;
using Tabula.Linux;
using Tabula.Machine.Init;

// tabula-boot: stboot as /init. Arguments come from the kernel command line after "--":
//   (none) or --options…   the boot state machine (BootOptions lists the options)
//   marker                  the test/benchmark "OS": print the hand-over digest, power off
//   version                 print the version (usable outside a VM)
// As PID 1 it never returns (InitHost): failures are retried by the state machine, then the machine restarts; if even
// that fails it keeps trying to restart.
var log = new BootLog(Console.Out, TimeProvider.System);
if (InitHost.Preflight("tabula-boot", BootMachine.Version, "the stboot initramfs", args) is int exit)
    return exit;

var environment = BootEnvironment.Linux(log);
InitHost.Forever(
    attempt =>
    {
        if (attempt > 0)
        {
            // Reached only when a restart or power-off call itself failed.
            new LinuxPower().Restart();
        }
        else if (args is ["marker"])
        {
            environment.Mounts.MountEssentials();
            Marker.Run(log);
            Reboot.PowerOff();
        }
        else
        {
            var options = BootOptions.Parse(args);
            log.Started(BootMachine.Version, string.Join(' ', args));
            BootMachine.Run(new BootContext(environment, options, log), new MountFileSystems());
        }
    },
    (attempt, e) => log.Fatal(attempt == 0 ? $"{e.GetType().Name}: {e.Message}" : e.Message),
    _ => TimeSpan.FromSeconds(Random.Shared.Next(2, 10)));
return 0;

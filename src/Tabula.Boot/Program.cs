using Tabula.Boot;
using Tabula.Boot.Seams;
using Tabula.Boot.States;
using Tabula.Linux;

// tabula-boot: stboot as /init. Arguments come from the kernel command line after "--":
//   (none) or --options…   the boot state machine (BootOptions lists the options)
//   marker                  the test/benchmark "OS": print the hand-over digest, power off
//   version                 print the version (usable outside a VM)
// As PID 1 it never returns: failures are retried, then the machine restarts; if even that fails it waits forever.
var log = new BootLog(Console.Out, TimeProvider.System);
if (args is ["version"])
{
    Console.WriteLine($"tabula-boot {BootMachine.Version} pid={Environment.ProcessId}");
    return 0;
}
if (Environment.ProcessId != 1)
{
    Console.Error.WriteLine("tabula-boot: runs only as PID 1 (init) of the stboot initramfs; try \"tabula-boot version\"");
    return 2;
}

var environment = BootEnvironment.Linux(log);
try
{
    if (args is ["marker"])
    {
        environment.Mounts.MountEssentials();
        Marker.Run(log);
        Reboot.PowerOff();
    }
    else
    {
        var options = BootOptions.Parse(args);
        log.Started(BootMachine.Version, string.Join(' ', args));
        var context = new BootContext(environment, options, log);
        BootMachine.Run(context, new MountFileSystems());
    }
}
catch (Exception e)
{
    log.Fatal($"{e.GetType().Name}: {e.Message}");
}
// Reached only when a restart or power-off call itself failed: keep trying, never exit.
while (true)
{
    Thread.Sleep(TimeSpan.FromSeconds(Random.Shared.Next(2, 10)));
    try { new LinuxPower().Restart(); }
    catch (LinuxException e) { log.Fatal(e.Message); }
}

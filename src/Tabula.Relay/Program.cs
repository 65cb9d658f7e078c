using Tabula.Relay;

// tabula-relay: the relay agent, /init of the relay OS package (docs/relay.md).
//   (none)    run as PID 1 of the RAM OS: amnesia guards, network, enrollment, kernel WireGuard, peer sync, health
//   version   print the version (usable outside a VM)
// As PID 1 it never returns: failing stages are reported and retried.
if (args is ["version"])
{
    Console.WriteLine($"tabula-relay {RelayMachine.Version} pid={Environment.ProcessId}");
    return 0;
}
if (Environment.ProcessId != 1)
{
    Console.Error.WriteLine("tabula-relay: runs only as PID 1 (init) of the relay OS; try \"tabula-relay version\"");
    return 2;
}
var log = new RelayLog(Console.Out, TimeProvider.System);
while (true)
{
    try
    {
        new RelayMachine(log).Run();
    }
    catch (Exception e)
    {
        log.Fatal($"{e.GetType().Name}: {e.Message}");
    }
    Thread.Sleep(TimeSpan.FromSeconds(10));
}

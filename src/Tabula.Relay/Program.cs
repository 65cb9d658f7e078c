using Tabula.Machine.Init;
using Tabula.Relay;

// tabula-relay: the relay agent, /init of the relay OS package (docs/relay.md).
//   (none)    run as PID 1 of the RAM OS: amnesia gate, modules, network, enrollment, kernel WireGuard, peer sync, health
//   version   print the version (usable outside a VM)
// As PID 1 it never returns (InitHost): failing stages are reported and retried; should the machine's run itself
// end in an exception, it is reported and the run starts again 10 s later.
if (InitHost.Preflight("tabula-relay", RelayMachine.Version, "the relay OS", args) is int exit)
    return exit;
var log = new RelayLog(Console.Out, TimeProvider.System);
InitHost.Forever(
    _ => new RelayMachine(log).Run(),
    (_, e) => log.Fatal($"{e.GetType().Name}: {e.Message}"),
    _ => TimeSpan.FromSeconds(10));
return 0;

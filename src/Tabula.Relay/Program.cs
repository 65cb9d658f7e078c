// tabula-relay: the relay agent, /init of the relay OS package.
//   (none)    run as PID 1 of the RAM OS
//   version   print the version (usable outside a VM)
if (args is ["version"])
{
    Console.WriteLine($"tabula-relay 0.1 pid={Environment.ProcessId}");
    return 0;
}
Console.Error.WriteLine("tabula-relay: not written yet");
return 2;

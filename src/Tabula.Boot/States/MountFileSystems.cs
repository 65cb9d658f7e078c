namespace Tabula.Boot.States;

/// <summary>/dev, /proc, /sys, /run (and efivarfs on UEFI machines).</summary>
internal sealed class MountFileSystems : BootState
{
    public override string Name => "mount";

    public override Transition Run(BootContext context)
    {
        string mounted = context.Environment.Mounts.MountEssentials();
        context.Log.StageDone(Name, TimeSpan.Zero, $"mounted={mounted} kernel-uptime={Marker.Uptime()}");
        return Transition.To(new LoadModules());
    }
}

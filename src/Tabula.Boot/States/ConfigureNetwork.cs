using System.Diagnostics;

namespace Tabula.Boot.States;

/// <summary>Static or DHCP, as the host configuration says (see <see cref="Network.LinuxNetwork"/>); a failure retries this state.</summary>
internal sealed class ConfigureNetwork : BootState
{
    public override string Name => "network";

    public override Transition Run(BootContext context)
    {
        var clock = Stopwatch.StartNew();
        var result = context.Environment.Network.Configure(context.Configuration!.Host);
        if (result.Failure is { } failure)
            return Transition.To(new Recover(failure, new ConfigureNetwork()));
        context.Log.StageDone(Name, clock.Elapsed, result.Summary);
        return Transition.To(new FetchPackage(0));
    }
}

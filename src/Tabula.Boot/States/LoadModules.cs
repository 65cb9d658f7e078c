using System.Diagnostics;
using Tabula.Machine.Modules;

namespace Tabula.Boot.States;

/// <summary>
/// The machine layer's coldplug (<see cref="Coldplug"/>): every module of the image that a device of this machine asks
/// for (modalias against the image's modules.alias), plus those no device can ask for, dependencies first (the
/// image's modules.dep). A module that fails, or unusable index files, are reported and skipped: the stage that needs
/// the module (usually the network) then fails with its own reason.
/// </summary>
internal sealed class LoadModules : BootState
{
    public override string Name => "modules";

    public override Transition Run(BootContext context)
    {
        var clock = Stopwatch.StartNew();
        ColdplugResult? result = null;
        try
        {
            result = new Coldplug(context.Environment.Root, context.Environment.Modules).Run();
        }
        catch (ModuleIndexException e)
        {
            context.Log.SourceFailed(new BootFailure(Name, FailureReason.ModuleLoadFailed, $"{e.Reason}: {e.Message}"));
        }
        foreach (var failure in result?.Failed ?? [])
            context.Log.SourceFailed(new BootFailure(Name, FailureReason.ModuleLoadFailed, $"{failure.Module}: {failure.Detail}"));
        if (result is not null)
            context.Log.Note(Name, result.Summary);
        context.Log.StageDone(Name, clock.Elapsed, result?.Counts ?? "loaded=0 already=0 failed=0");
        return Transition.To(new LoadConfiguration());
    }
}

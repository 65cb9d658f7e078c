using System.Diagnostics;
using Tabula.Linux;

namespace Tabula.Boot.States;

/// <summary>
/// Loads /lib/modules/load-order, one absolute path per line, dependencies first (computed at image build time by
/// Tabula.Images). A module that fails is reported and skipped: the stage that needs it (usually the network)
/// then fails with its own reason.
/// </summary>
internal sealed class LoadModules : BootState
{
    public const string LoadOrder = "/lib/modules/load-order";

    public override string Name => "modules";

    public override Transition Run(BootContext context)
    {
        var clock = Stopwatch.StartNew();
        string list = context.Environment.PathOf(LoadOrder);
        int loaded = 0, present = 0, failed = 0;
        if (File.Exists(list))
        {
            foreach (string line in File.ReadLines(list))
            {
                string path = line.Trim();
                if (path.Length == 0)
                    continue;
                try
                {
                    if (context.Environment.Modules.Load(context.Environment.PathOf(path)))
                        loaded++;
                    else
                        present++;
                }
                catch (Exception e) when (e is LinuxException or IOException or UnauthorizedAccessException)
                {
                    failed++;
                    context.Log.SourceFailed(new BootFailure(Name, FailureReason.ModuleLoadFailed, e.Message, null));
                }
            }
        }
        context.Log.StageDone(Name, clock.Elapsed, $"loaded={loaded} already={present} failed={failed}");
        return Transition.To(new LoadConfiguration());
    }
}

using System.Diagnostics;
using Tabula.Boot.Freshness;
using Tabula.Packaging;

namespace Tabula.Boot.States;

/// <summary>
/// After the signatures verified: the freshness decision (<see cref="FreshnessDecision"/>) on the verified archive's
/// manifest (release, class) and this attempt's ticket. Prints <c>freshness … fresh</c>, <c>freshness … UNFRESH</c>
/// (optional policy, controller unreachable) or <c>freshness … refused reason=NAME</c>; a refused package from pointer i
/// makes pointer i+1 be tried with the same ticket (mirrors carry no trust), the last one ends the round (the next one
/// asks for a new ticket). What was decided goes into the hand-over (<see cref="HandoverFreshness"/>).
/// </summary>
internal sealed class CheckFreshness(FetchedPackage package) : BootState
{
    public override string Name => "freshness";

    public override Transition Run(BootContext context)
    {
        var clock = Stopwatch.StartNew();
        var configuration = context.Configuration!;
        var policy = configuration.Trust.Policy.Freshness!;
        Manifest manifest;
        try
        {
            using var archive = OsPackageArchive.Open(new HandleStream(package.Archive));
            manifest = archive.Manifest;
        }
        catch (PackageFormatException e)
        {
            package.Dispose();
            return Transition.To(new Recover(new BootFailure(Name, FailureReason.ArchiveInvalid, e.Message, package.DescriptorUrl), new FetchPackage(0)));
        }

        var round = context.Round ?? new FreshnessRound(new byte[BootTicketPayload.NonceSize], null) { Unavailable = "no ticket was asked for" };
        var verdict = FreshnessDecision.Decide(policy, configuration.Trust.TicketRoot, round, package.Sha256, manifest);
        if (!verdict.Boot)
        {
            context.Log.FreshnessRefused(verdict.Reason!.Value, verdict.Detail);
            var failure = new BootFailure(Name, FailureReason.FreshnessRefused, $"{verdict.Reason.Value.Name()}: {verdict.Detail}", package.DescriptorUrl);
            int next = package.PointerIndex + 1;
            bool more = package.Source == FetchMethod.Network && next < configuration.Host.OsPackagePointers.Count;
            package.Dispose();
            if (more)
            {
                context.Log.SourceFailed(failure);
                return Transition.To(new FetchPackage(next));
            }
            return Transition.To(new Recover(failure, new FetchPackage(0)));
        }

        if (verdict.Fresh)
            context.Log.Fresh(verdict.Detail);
        else
            context.Log.Unfresh(verdict.Reason!.Value, verdict.Detail);
        context.Freshness = new HandoverFreshness(verdict.Fresh, verdict.Reason?.Name(), verdict.Ticket?.Bytes.ToArray(), manifest.Release, manifest.MachineClass);
        round.Dispose();   // the nonce is spent
        context.Round = null;
        context.Log.StageDone(Name, clock.Elapsed, $"fresh={(verdict.Fresh ? "yes" : "no")} release={manifest.Release}");
        return Transition.To(new Measure(package));
    }
}

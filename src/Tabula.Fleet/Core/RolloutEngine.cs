using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Tabula.Fleet.Core;

/// <summary>
/// Drives open rollouts (<see cref="RolloutService.AdvanceAllAsync"/>) every <see cref="FleetLimits.RolloutTick"/> and at every
/// machine change (enrollments, applied reports, other instances' NOTIFY). The state lives in the database only: a restarted
/// controller picks each rollout up where it was; with several instances on PostgreSQL the rollout's lease lets one drive it,
/// and another takes over when that one stops (it gives its leases up) or dies (the lease runs out).
/// </summary>
public sealed class RolloutEngine(RolloutService rollouts, MachineEvents machineEvents, ILogger<RolloutEngine> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            long seen = machineEvents.Version;
            try
            {
                await rollouts.AdvanceAllAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { break; }
            catch (Exception e) when (e is System.Data.Common.DbException or FleetException or InvalidOperationException)
            {
                Log.Unexpected(logger, e);
            }
            try { await machineEvents.WaitAsync(seen, FleetLimits.RolloutTick, ct); }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { break; }
            // Coalesce bursts of machine changes (a pass itself changes machines).
            try { await Task.Delay(TimeSpan.FromMilliseconds(100), ct); }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { break; }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try { await rollouts.ReleaseLeasesAsync(cancellationToken); }
        catch (Exception e) when (e is System.Data.Common.DbException or OperationCanceledException or ObjectDisposedException) { }
    }
}

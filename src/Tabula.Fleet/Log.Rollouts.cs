using Microsoft.Extensions.Logging;

namespace Tabula.Fleet;

// Rollouts (issue 18): ids 1801-1899. Machine ids and staff usernames only.
internal static partial class Log
{
    [LoggerMessage(1801, LogLevel.Information, "rollout {RolloutId}: {What}")]
    public static partial void Rollout(ILogger logger, long rolloutId, string what);

    [LoggerMessage(1802, LogLevel.Warning, "rollout {RolloutId} halted: {Reason}")]
    public static partial void RolloutHalted(ILogger logger, long rolloutId, string reason);

    [LoggerMessage(1803, LogLevel.Information, "machine {MachineId} answered reboot command {Sequence}: {Answer}")]
    public static partial void RebootCommandAnswered(ILogger logger, string machineId, long sequence, string answer);
}

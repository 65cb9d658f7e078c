using Microsoft.Extensions.Logging;

namespace Tabula.Fleet;

// Messages about relays' authority (issue 17), in their own event id range (1700-1799); the rule of Log.cs holds.
internal static partial class Log
{
    [LoggerMessage(1701, LogLevel.Information, "relay {MachineId}: peer stream ended, {Why}")]
    public static partial void RelayStreamRevoked(ILogger logger, string machineId, string why);
}

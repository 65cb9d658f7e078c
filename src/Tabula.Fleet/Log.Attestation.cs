using Microsoft.Extensions.Logging;

namespace Tabula.Fleet;

// Messages about attestation (issue 19), in their own event id range (1900-1999); the rule of Log.cs holds.
internal static partial class Log
{
    [LoggerMessage(1901, LogLevel.Information, "machine {MachineId} attestation {Status} {Step} {Detail}")]
    public static partial void MachineAttestation(ILogger logger, string machineId, string status, string? step, string? detail);
}

using Microsoft.Extensions.Logging;

namespace Tabula.Fleet;

/// <summary>
/// Every log message of the fleet controller. Audit rule: no customer key, tunnel address, account
/// number or client address appears here; machine ids and staff usernames may.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "fleet controller listening on {Urls} with {Store} storage")]
    public static partial void Listening(ILogger logger, string urls, string store);

    [LoggerMessage(2, LogLevel.Information, "machine {MachineId} enrolled, now {State}")]
    public static partial void MachineEnrolled(ILogger logger, string machineId, string state);

    [LoggerMessage(3, LogLevel.Information, "machine {MachineId}: {Action} -> {State} by {Staff}")]
    public static partial void MachineTransition(ILogger logger, string machineId, string action, string state, string staff);

    [LoggerMessage(4, LogLevel.Information, "staff {Username} logged in")]
    public static partial void StaffLoggedIn(ILogger logger, string username);

    [LoggerMessage(12, LogLevel.Warning, "staff {Username} locked out after too many failed logins in a row (an admin unlocks: tabula fleet staff unlock)")]
    public static partial void StaffLockedOut(ILogger logger, string username);

    [LoggerMessage(13, LogLevel.Warning, "TOTP is optional for operators and admins (--staff-totp optional): a password alone logs them in")]
    public static partial void StaffTotpOptional(ILogger logger);

    [LoggerMessage(5, LogLevel.Warning, "peer pump failed; retrying")]
    public static partial void PeerPumpFailed(ILogger logger, Exception exception);

    [LoggerMessage(6, LogLevel.Debug, "relay {MachineId} subscribed from revision {From}")]
    public static partial void RelaySubscribed(ILogger logger, string machineId, long from);

    [LoggerMessage(7, LogLevel.Information, "relay {MachineId} gets a snapshot at revision {Revision}")]
    public static partial void RelaySnapshot(ILogger logger, string machineId, long revision);

    [LoggerMessage(8, LogLevel.Error, "unexpected error")]
    public static partial void Unexpected(ILogger logger, Exception exception);

    [LoggerMessage(9, LogLevel.Information, "compacted {Count} peer changes before revision {Revision}")]
    public static partial void Compacted(ILogger logger, int count, long revision);

    [LoggerMessage(10, LogLevel.Information, "boot ticket issued to machine {MachineId} for release {Release}")]
    public static partial void TicketIssued(ILogger logger, string machineId, long release);

    [LoggerMessage(11, LogLevel.Information, "machine {MachineId} enrolled with freshness {Status} {Reason}")]
    public static partial void MachineFreshness(ILogger logger, string machineId, string status, string? reason);

    [LoggerMessage(1601, LogLevel.Information, "pruned {Count} boot ticket records")]
    public static partial void TicketsPruned(ILogger logger, int count);
}

using Microsoft.Extensions.Logging;

namespace Tabula.Provisioning;

/// <summary>
/// Every message the server logs, in one file to audit: staff actions name the token (the actor), machine
/// requests are not logged at all, and no message carries a client address, a token or a label value.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Provisioning server listening on {Url}, store {Store}")]
    public static partial void Listening(this ILogger logger, string url, string store);

    [LoggerMessage(2, LogLevel.Information, "Package {Archive} accepted from {Actor}: {Valid} valid signatures, {Required} required")]
    public static partial void PackageAccepted(this ILogger logger, string archive, string actor, int valid, int required);

    [LoggerMessage(3, LogLevel.Warning, "Package refused from {Actor}: {Found} found, {Valid} valid, {Required} required")]
    public static partial void PackageRefused(this ILogger logger, string actor, int found, int valid, int required);

    [LoggerMessage(4, LogLevel.Information, "Channel {Channel} moved from {From} to {To} by {Actor}")]
    public static partial void ChannelMoved(this ILogger logger, string channel, string? from, string to, string actor);

    [LoggerMessage(5, LogLevel.Error, "Store failure: {Message}")]
    public static partial void StoreFailed(this ILogger logger, Exception exception, string message);

    [LoggerMessage(6, LogLevel.Warning, "Staff request refused: {Error}")]
    public static partial void StaffRequestRefused(this ILogger logger, string error);

    [LoggerMessage(7, LogLevel.Error, "Unexpected failure on {Endpoint}")]
    public static partial void Unexpected(this ILogger logger, Exception exception, string endpoint);
}

using System.Globalization;

namespace Tabula.Fleet.Core;

/// <summary>
/// When a new token expires, from what staff typed (<c>--expires</c>, the API's <c>expires</c>): nothing for the default,
/// <c>never</c>, a duration (<c>90d</c>, <c>12h</c>, <c>30m</c>) or an ISO 8601 instant. A never-expiring token exists only
/// when asked for by name; anything past <see cref="FleetLimits.MaxTokenLifetime"/> is refused.
/// </summary>
public static class TokenLifetime
{
    /// <summary>The expiry in Unix milliseconds, or null for "never".</summary>
    public static long? Parse(string? text, DateTimeOffset now, TimeSpan fallback)
    {
        if (string.IsNullOrWhiteSpace(text)) return (now + fallback).ToUnixTimeMilliseconds();
        if (text.Length > FleetLimits.MaxExpiresLength) Refuse();
        text = text.Trim();
        if (text == "never") return null;
        DateTimeOffset at;
        if (text.Length >= 2 && char.IsAsciiDigit(text[0]) && text[^1] is 'd' or 'h' or 'm'
            && long.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out long n)
            && n is > 0 and <= 10 * 366 * 24 * 60)
            at = now + (text[^1] switch { 'd' => TimeSpan.FromDays(n), 'h' => TimeSpan.FromHours(n), _ => TimeSpan.FromMinutes(n) });
        else if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out at))
            return Refuse();
        if (at <= now) throw new FleetException(FleetError.InvalidInput, "expires is in the past");
        if (at - now > FleetLimits.MaxTokenLifetime)
            throw new FleetException(FleetError.InvalidInput, $"expires is at most {FleetLimits.MaxTokenLifetime.TotalDays:0} days ahead (or never)");
        return at.ToUnixTimeMilliseconds();
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static long? Refuse() => throw new FleetException(FleetError.InvalidInput,
        "expires is never, a duration (90d, 12h, 30m) or an ISO 8601 time (2027-01-31T00:00:00Z)");
}

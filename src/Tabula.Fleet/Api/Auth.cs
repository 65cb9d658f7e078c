using Microsoft.AspNetCore.Http;
using Tabula.Fleet.Core;

namespace Tabula.Fleet.Api;

/// <summary>Bearer tokens: staff sessions and API tokens, relay tokens, enrollment tokens, account numbers.</summary>
internal static class Auth
{
    public static string? Bearer(HttpContext context, string scheme = "Bearer")
    {
        string? header = context.Request.Headers.Authorization;
        return header is not null && header.StartsWith(scheme + " ", StringComparison.OrdinalIgnoreCase)
            ? header[(scheme.Length + 1)..].Trim() : null;
    }

    /// <summary>
    /// The staff member behind the request, with at least role <paramref name="minimum"/>. A session that may only enroll TOTP
    /// (<see cref="StaffPolicy.MustEnrollTotp"/>) is refused with 403 totp_required unless <paramref name="totpEnrollment"/>
    /// (the endpoints that enroll TOTP, /me and logout).
    /// </summary>
    public static async Task<Staff> StaffAsync(HttpContext context, StaffService staffService, StaffRole minimum, bool totpEnrollment = false)
    {
        var match = await staffService.AuthenticateAsync(Bearer(context), context.RequestAborted)
                    ?? throw new FleetException(FleetError.Unauthenticated, "log in or pass an API token (Authorization: Bearer …)");
        var staff = match.Staff;
        if (!totpEnrollment && staffService.Policy.MustEnrollTotp(staff, match.Kind))
            throw new FleetException(FleetError.TotpRequired,
                $"TOTP is required for {staff.Role.Name()}s: enroll an authenticator (POST /api/v1/me/totp, then /api/v1/me/totp/confirm) and log in with its code");
        if (staff.Role < minimum)
            throw new FleetException(FleetError.Forbidden, $"this needs the {minimum.Name()} role; you are {staff.Role.Name()}");
        return staff;
    }

    public static async Task<Machine> RelayAsync(HttpContext context, MachineService machines) =>
        await machines.AuthenticateRelayAsync(Bearer(context), context.RequestAborted)
        ?? throw new FleetException(FleetError.Unauthenticated, "a relay token from enrollment is required");

    /// <summary>Customers authenticate with their account number, as in Mullvad's API: <c>Authorization: Token 1234…</c>.</summary>
    public static string? Account(HttpContext context) => Bearer(context, "Token");
}

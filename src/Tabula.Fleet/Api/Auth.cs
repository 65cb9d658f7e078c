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

    /// <summary>The staff member behind the request, with at least role <paramref name="minimum"/>.</summary>
    public static async Task<Staff> StaffAsync(HttpContext context, StaffService staffService, StaffRole minimum)
    {
        var staff = await staffService.AuthenticateStaffAsync(Bearer(context), context.RequestAborted)
                    ?? throw new FleetException(FleetError.Unauthenticated, "log in or pass an API token (Authorization: Bearer …)");
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

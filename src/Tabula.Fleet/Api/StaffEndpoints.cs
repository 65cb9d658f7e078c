using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Tabula.Fleet.Core;

namespace Tabula.Fleet.Api;

/// <summary>/api/v1: staff login, tokens, TOTP, staff accounts, audit trail.</summary>
public static class StaffEndpoints
{
    public static void MapStaff(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1").RequireRateLimiting(RateLimits.Staff);
        api.MapPost("/login", Login).RequireRateLimiting(RateLimits.Login);
        api.MapPost("/logout", async (HttpContext http, StaffService staffService) =>
        {
            await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            await staffService.LogoutAsync(Auth.Bearer(http)!, http.RequestAborted);
            return TypedResults.NoContent();
        });
        api.MapGet("/me", async (HttpContext http, StaffService staffService) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            return TypedResults.Ok(new StaffView(me.Username, me.Role.Name(), me.TotpEnabled));
        });
        api.MapPost("/me/tokens", async (NameRequest body, HttpContext http, StaffService staffService) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            return TypedResults.Ok(new TokenResponse(await staffService.CreateApiTokenAsync(me, body.Name ?? "", http.RequestAborted)));
        });
        api.MapPost("/me/totp", async (HttpContext http, StaffService staffService) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            var (secret, uri) = await staffService.BeginTotpAsync(me, http.RequestAborted);
            return TypedResults.Ok(new TotpBeginResponse(Security.Base32.Encode(secret), uri));
        });
        api.MapPost("/me/totp/confirm", async (CodeRequest body, HttpContext http, StaffService staffService) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            await staffService.ConfirmTotpAsync(me, body.Code ?? "", http.RequestAborted);
            return TypedResults.NoContent();
        });
        api.MapGet("/staff", async (HttpContext http, StaffService staffService) =>
        {
            await Auth.StaffAsync(http, staffService, StaffRole.Admin);
            var all = await staffService.ListStaffAsync(http.RequestAborted);
            return TypedResults.Ok(all.Select(s => new StaffView(s.Username, s.Role.Name(), s.TotpEnabled)).ToList());
        });
        api.MapPost("/staff", async (CreateStaffRequest body, HttpContext http, StaffService staffService) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Admin);
            if (!MachineStateNames.TryParseRole(body.Role, out StaffRole role))
                throw new FleetException(FleetError.InvalidInput, "role is viewer, operator or admin");
            var created = await staffService.CreateStaffAsync(me.Username, body.Username ?? "", body.Password ?? "", role, http.RequestAborted);
            return TypedResults.Created($"/api/v1/staff/{created.Username}", new StaffView(created.Username, created.Role.Name(), false));
        });
        api.MapGet("/audit", async (int? limit, HttpContext http, StaffService staffService) =>
        {
            await Auth.StaffAsync(http, staffService, StaffRole.Admin);
            var entries = await staffService.AuditAsync(limit ?? 100, http.RequestAborted);
            return TypedResults.Ok(entries.Select(e => new AuditView(e.Id, DateTimeOffset.FromUnixTimeMilliseconds(e.At), e.Actor, e.Action,
                e.Target, e.Reason, e.Detail)).ToList());
        });
    }

    private static async Task<Ok<LoginResponse>> Login(LoginRequest body, HttpContext http, StaffService staffService, LoginThrottle throttle)
    {
        if (string.IsNullOrEmpty(body.Username) || string.IsNullOrEmpty(body.Password))
            throw new FleetException(FleetError.InvalidInput, "username and password are required");
        throttle.Attempt(body.Username);
        if (body.Password.Length > FleetLimits.MaxPasswordLength)
            throw new FleetException(FleetError.Unauthenticated, "wrong username or password");
        var (token, staff, expires) = await staffService.LoginAsync(body.Username, body.Password, body.Totp, http.RequestAborted);
        return TypedResults.Ok(new LoginResponse(token, staff.Username, staff.Role.Name(), expires));
    }
}

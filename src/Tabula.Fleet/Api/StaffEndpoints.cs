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
            await Auth.StaffAsync(http, staffService, StaffRole.Viewer, totpEnrollment: true);
            await staffService.LogoutAsync(Auth.Bearer(http)!, http.RequestAborted);
            return TypedResults.NoContent();
        });
        api.MapGet("/me", async (HttpContext http, StaffService staffService) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Viewer, totpEnrollment: true);
            return TypedResults.Ok(View(me));
        });
        // Issue 17: only admins mint API tokens (for themselves here, for others at /staff/{username}/tokens); others get 403.
        api.MapPost("/me/tokens", async (CreateTokenRequest body, HttpContext http, StaffService staffService) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Admin);
            var (token, info) = await staffService.MintApiTokenAsync(me, null, body.Name ?? "", body.Expires, http.RequestAborted);
            return TypedResults.Ok(Created(token, info));
        });
        api.MapPost("/staff/{username}/tokens", async (string username, CreateTokenRequest body, HttpContext http, StaffService staffService) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Admin);
            var (token, info) = await staffService.MintApiTokenAsync(me, username, body.Name ?? "", body.Expires, http.RequestAborted);
            return TypedResults.Ok(Created(token, info));
        });
        api.MapPost("/staff/{username}/deactivate", async (string username, ReasonRequest? body, HttpContext http, StaffService staffService) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Admin);
            return TypedResults.Ok(View(await staffService.DeactivateAsync(me, username, body?.Reason, http.RequestAborted)));
        });
        api.MapPost("/staff/{username}/activate", async (string username, ReasonRequest? body, HttpContext http, StaffService staffService) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Admin);
            return TypedResults.Ok(View(await staffService.ActivateAsync(me, username, body?.Reason, http.RequestAborted)));
        });
        // Issue 17: a staff member locked out by failed logins logs in again once an admin unlocks them (audited staff.unlock).
        api.MapPost("/staff/{username}/unlock", async (string username, ReasonRequest? body, HttpContext http, StaffService staffService) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Admin);
            return TypedResults.Ok(View(await staffService.UnlockAsync(me, username, body?.Reason, http.RequestAborted)));
        });
        api.MapPost("/staff/{username}/role", async (string username, RoleRequest body, HttpContext http, StaffService staffService) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Admin);
            if (!MachineStateNames.TryParseRole(body.Role, out StaffRole role))
                throw new FleetException(FleetError.InvalidInput, "role is viewer, operator or admin");
            return TypedResults.Ok(View(await staffService.SetRoleAsync(me, username, role, body.Reason, http.RequestAborted)));
        });
        // On an account with TOTP, the body carries a current code: {"code": "123456"}.
        api.MapPost("/me/totp", async (CodeRequest? body, HttpContext http, StaffService staffService) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Viewer, totpEnrollment: true);
            var (secret, uri) = await staffService.BeginTotpAsync(me, body?.Code, http.RequestAborted);
            return TypedResults.Ok(new TotpBeginResponse(Security.Base32.Encode(secret), uri));
        });
        api.MapPost("/me/totp/confirm", async (CodeRequest body, HttpContext http, StaffService staffService) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Viewer, totpEnrollment: true);
            await staffService.ConfirmTotpAsync(me, body.Code ?? "", http.RequestAborted);
            return TypedResults.NoContent();
        });
        api.MapGet("/staff", async (HttpContext http, StaffService staffService) =>
        {
            await Auth.StaffAsync(http, staffService, StaffRole.Admin);
            var all = await staffService.ListStaffAsync(http.RequestAborted);
            return TypedResults.Ok(all.Select(View).ToList());
        });
        api.MapPost("/staff", async (CreateStaffRequest body, HttpContext http, StaffService staffService) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Admin);
            if (!MachineStateNames.TryParseRole(body.Role, out StaffRole role))
                throw new FleetException(FleetError.InvalidInput, "role is viewer, operator or admin");
            var created = await staffService.CreateStaffAsync(me.Username, body.Username ?? "", body.Password ?? "", role, http.RequestAborted);
            return TypedResults.Created($"/api/v1/staff/{created.Username}", new StaffView(created.Username, created.Role.Name(), false));
        });
        // Issue 18: searchable and paged (keyset: before=ID of the last entry seen); without the new parameters as before.
        api.MapGet("/audit", async (int? limit, long? before, string? actor, string? action, string? target, HttpContext http,
            StaffService staffService) =>
        {
            await Auth.StaffAsync(http, staffService, StaffRole.Admin);
            var entries = await staffService.SearchAuditAsync(new AuditQuery(limit ?? 100, before, actor, action, target), http.RequestAborted);
            return TypedResults.Ok(entries.Select(e => new AuditView(e.Id, DateTimeOffset.FromUnixTimeMilliseconds(e.At), e.Actor, e.Action,
                e.Target, e.Reason, e.Detail)).ToList());
        });
    }

    private static StaffView View(Staff s) => new(s.Username, s.Role.Name(), s.TotpEnabled, s.Active, s.Locked);

    internal static TokenResponse Created(string token, TokenInfo info) =>
        new(token, info.Id, info.ExpiresAt is { } e ? DateTimeOffset.FromUnixTimeMilliseconds(e) : null);

    private static async Task<Ok<LoginResponse>> Login(LoginRequest body, HttpContext http, StaffService staffService, LoginThrottle throttle)
    {
        if (string.IsNullOrEmpty(body.Username) || string.IsNullOrEmpty(body.Password))
            throw new FleetException(FleetError.InvalidInput, "username and password are required");
        string source = RateLimits.SourceKey(http);
        throttle.Attempt(body.Username, source);
        var login = await staffService.LoginAsync(body.Username, body.Password, body.Totp, http.RequestAborted);
        throttle.Succeeded(source);
        return TypedResults.Ok(new LoginResponse(login.Token, login.Staff.Username, login.Staff.Role.Name(), login.Expires,
            login.TotpEnrollmentOnly ? true : null));
    }
}

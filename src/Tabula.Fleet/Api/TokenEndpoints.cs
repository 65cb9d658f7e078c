using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tabula.Fleet.Core;

namespace Tabula.Fleet.Api;

/// <summary>/api/v1/tokens: list (never secrets) and revoke sessions, API tokens and enrollment tokens (audited).</summary>
public static class TokenEndpoints
{
    public static void MapTokens(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/tokens").RequireRateLimiting(RateLimits.Staff);
        api.MapGet("/", async (HttpContext http, StaffService staffService, TokenService tokens) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            return TypedResults.Ok((await tokens.ListAsync(me, http.RequestAborted)).Select(TokenView.From).ToList());
        });
        api.MapDelete("/{id}", async (string id, string? reason, HttpContext http, StaffService staffService, TokenService tokens) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            return TypedResults.Ok(TokenView.From(await tokens.RevokeAsync(me, id, reason, http.RequestAborted)));
        });
    }
}

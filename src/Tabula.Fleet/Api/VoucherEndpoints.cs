using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tabula.Fleet.Core;

namespace Tabula.Fleet.Api;

/// <summary>/api/v1/vouchers: operators issue and revoke account-creation vouchers (audited); viewers list them (never the codes).</summary>
public static class VoucherEndpoints
{
    public static void MapVouchers(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/vouchers").RequireRateLimiting(RateLimits.Staff);
        api.MapPost("/", async (CreateVoucherRequest body, HttpContext http, StaffService staffService, VoucherService vouchers) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Operator);
            var (code, v) = await vouchers.CreateAsync(me, body.Name ?? "", body.Uses, body.ValidDays, http.RequestAborted);
            return TypedResults.Created($"/api/v1/vouchers/{v.Id}", new VoucherCreated(v.Id, code, v.Name, v.MaxUses,
                v.ExpiresAt is { } e ? DateTimeOffset.FromUnixTimeMilliseconds(e) : null));
        });
        api.MapGet("/", async (HttpContext http, StaffService staffService, VoucherService vouchers) =>
        {
            await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            return TypedResults.Ok((await vouchers.ListAsync(http.RequestAborted)).Select(VoucherView.From).ToList());
        });
        api.MapDelete("/{id:long}", async (long id, string? reason, HttpContext http, StaffService staffService, VoucherService vouchers) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Operator);
            await vouchers.RevokeAsync(me, id, reason, http.RequestAborted);
            return TypedResults.NoContent();
        });
    }
}

using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tabula.Fleet.Core;

namespace Tabula.Fleet.Api;

/// <summary>
/// Freshness (issue 16): /api/v1/releases (staff: current release and floor per machine class, audited with a reason),
/// /api/v1/ticket-key (the ticket key's public half as PEM, for the stboot trust policy's ticket_root.pem).
/// </summary>
public static class ReleaseEndpoints
{
    public static void MapReleases(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1").RequireRateLimiting(RateLimits.Staff);
        api.MapGet("/releases", async (HttpContext http, StaffService staffService, ReleaseService releases) =>
        {
            await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            var (classes, named, freshness, machines) = await releases.SnapshotAsync(http.RequestAborted);
            var described = ReleaseService.Describe(machines, classes, named, freshness);
            return TypedResults.Ok(classes.Select(c => new ReleaseClassView(c.MachineClass, c.CurrentDigest, c.CurrentRelease, c.MinRelease,
                DateTimeOffset.FromUnixTimeMilliseconds(c.UpdatedAt),
                machines.Where(m => described[m.Id].MachineClass == c.MachineClass && m.State != MachineState.Retired)
                    .Select(m => new ReleaseMachineView(m.Id, m.State.Name(), m.Placement?.Hostname, m.PackageDigest, described[m.Id].Release,
                        described[m.Id].BelowFloor, (described[m.Id].Freshness?.Status ?? FreshnessStatus.Unreported).Name(),
                        described[m.Id].Freshness?.Reason))
                    .ToList())).ToList());
        });
        api.MapPost("/releases/{machineClass}/current", async (string machineClass, SetCurrentReleaseRequest body, HttpContext http,
            StaffService staffService, ReleaseService releases) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Admin);
            if (body.Release is null) throw new FleetException(FleetError.InvalidInput, "release is required");
            var c = await releases.SetCurrentAsync(me.Username, machineClass, body.Digest ?? "", body.Release.Value, body.Reason, http.RequestAborted);
            return TypedResults.Ok(new ReleaseClassView(c.MachineClass, c.CurrentDigest, c.CurrentRelease, c.MinRelease,
                DateTimeOffset.FromUnixTimeMilliseconds(c.UpdatedAt), []));
        });
        api.MapPost("/releases/{machineClass}/floor", async (string machineClass, ReleaseFloorRequest body, HttpContext http,
            StaffService staffService, ReleaseService releases) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Admin);
            if (body.MinRelease is null) throw new FleetException(FleetError.InvalidInput, "min_release is required");
            var c = await releases.SetFloorAsync(me.Username, machineClass, body.MinRelease.Value, body.Force ?? false, body.Reason, http.RequestAborted);
            return TypedResults.Ok(new ReleaseClassView(c.MachineClass, c.CurrentDigest, c.CurrentRelease, c.MinRelease,
                DateTimeOffset.FromUnixTimeMilliseconds(c.UpdatedAt), []));
        });
        // Public information (stboot images carry it), but behind staff auth like the rest of /api/v1.
        api.MapGet("/ticket-key", async (HttpContext http, StaffService staffService, Security.TicketKey key) =>
        {
            await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            return TypedResults.Text(key.PublicKeyPem, "application/x-pem-file");
        });
    }
}

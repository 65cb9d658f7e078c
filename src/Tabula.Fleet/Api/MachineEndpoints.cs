using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tabula.Fleet.Core;

namespace Tabula.Fleet.Api;

/// <summary>/api/v1/machines: staff view and drive the machine lifecycle; allowed packages; enrollment tokens.</summary>
public static class MachineEndpoints
{
    public static void MapMachines(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1").RequireRateLimiting(RateLimits.Staff);
        api.MapGet("/machines", async (string? state, HttpContext http, StaffService staffService, MachineService machines, ReleaseService releases) =>
        {
            await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            MachineState? filter = null;
            if (state is not null)
                filter = MachineStateNames.TryParseState(state, out var s) ? s
                    : throw new FleetException(FleetError.InvalidInput, "state is awaiting, provisioned, deployed, draining or retired");
            var listed = await machines.ListMachinesAsync(filter, http.RequestAborted);
            var described = await releases.DescribeAsync(listed, http.RequestAborted);
            var attested = await machines.AttestationsAsync(http.RequestAborted);
            return TypedResults.Ok(listed.Select(m => MachineView.From(m, described[m.Id]).WithAttestation(attested.GetValueOrDefault(m.Id))).ToList());
        });
        api.MapGet("/health", async (HttpContext http, StaffService staffService, RelayHealthBoard board) =>
        {
            await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            return TypedResults.Ok(board.All().Select(kv => new HealthView(kv.Key, kv.Value.Peers, kv.Value.HandshakesLastMinute,
                kv.Value.RxBytes, kv.Value.TxBytes, kv.Value.AppliedRevision, kv.Value.ReportedAt, kv.Value.PeerSet.Wanted, kv.Value.PeerSet.Applied,
                kv.Value.PeerSet.Pending, kv.Value.PeerSet.OutsidePool, kv.Value.PeerSet.Partial, kv.Value.PeerSet.PartialReason,
                kv.Value.Agent.HandshakesLast3Minutes, kv.Value.Agent.UptimeSeconds, kv.Value.Agent.Version)).ToList());
        });
        // Issue 18: the dashboard's time series, fleet totals (or one location's) per minute over the last hours, or after a time.
        api.MapGet("/health/samples", async (int? hours, DateTimeOffset? since, string? location, HttpContext http, StaffService staffService,
            HealthSampler sampler, TimeProvider time) =>
        {
            await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            int retention = (int)FleetLimits.HealthSampleRetention.TotalHours;
            if (hours is < 1 || hours > retention)
                throw new FleetException(FleetError.InvalidInput, $"hours is 1 to {retention}");
            var after = since ?? time.GetUtcNow() - TimeSpan.FromHours(hours ?? 6);
            var points = await sampler.PointsAsync(after, string.IsNullOrEmpty(location) ? null : location, http.RequestAborted);
            return TypedResults.Ok(new HealthSamplesView((int)FleetLimits.HealthSampleInterval.TotalSeconds, retention,
                [.. points.Select(p => new HealthPointView(DateTimeOffset.FromUnixTimeMilliseconds(p.At), p.Deployed, p.Serving, p.Peers,
                    p.Connected, p.Locations))]));
        });
        api.MapGet("/machines/{id}", async (string id, HttpContext http, StaffService staffService, MachineService machines, ReleaseService releases) =>
        {
            await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            var machine = await machines.GetMachineAsync(id, http.RequestAborted);
            return TypedResults.Ok(MachineView.From(machine, (await releases.DescribeAsync([machine], http.RequestAborted))[machine.Id])
                .WithAttestation(await machines.AttestationAsync(machine.Id, http.RequestAborted)));
        });
        api.MapPost("/machines/{id}/provision", async (string id, ProvisionRequest body, HttpContext http, StaffService staffService, MachineService machines) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Operator);
            var placement = new RelayPlacement(body.Hostname ?? "", body.CountryCode ?? "", body.Country ?? "", body.CityCode ?? "",
                body.City ?? "", body.Provider ?? "", body.Owned, body.Ipv4AddrIn ?? "", body.Ipv6AddrIn, body.Port ?? 51820,
                body.Weight ?? 100, body.IncludeInCountry ?? true, body.Latitude, body.Longitude,
                NullIfEmpty(body.Ipv4AddrOut), NullIfEmpty(body.Ipv6AddrOut));
            var machine = await machines.TransitionAsync(me, id, MachineLifecycle.Action.Provision, body.Reason, placement, http.RequestAborted);
            return TypedResults.Ok(MachineView.From(machine));
        });
        foreach (var action in new[] { MachineLifecycle.Action.Deploy, MachineLifecycle.Action.Drain, MachineLifecycle.Action.Retire })
        {
            api.MapPost($"/machines/{{id}}/{action.ToString().ToLowerInvariant()}", async (string id, ReasonRequest? body, HttpContext http, StaffService staffService, MachineService machines) =>
            {
                var me = await Auth.StaffAsync(http, staffService, StaffRole.Operator);
                var machine = await machines.TransitionAsync(me, id, action, body?.Reason, null, http.RequestAborted,
                    overrideFreshness: body?.OverrideFreshness ?? false);
                return TypedResults.Ok(MachineView.From(machine));
            });
        }
        api.MapGet("/packages/allowed", async (HttpContext http, StaffService staffService, EnrollmentService enrollment) =>
        {
            await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            return TypedResults.Ok((await enrollment.AllowedPackagesAsync(http.RequestAborted)).ToList());
        });
        api.MapPost("/packages/allowed", async (AllowPackageRequest body, HttpContext http, StaffService staffService, EnrollmentService enrollment) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Admin);
            await enrollment.AllowPackageAsync(me.Username, body.Digest ?? "", body.Reason, http.RequestAborted);
            return TypedResults.NoContent();
        });
        api.MapPost("/packages/allowed/{digest}/withdraw", async (string digest, ReasonRequest? body, HttpContext http, StaffService staffService,
            EnrollmentService enrollment) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Admin);
            var drained = await enrollment.WithdrawPackageAsync(me.Username, digest, body?.Reason, http.RequestAborted);
            return TypedResults.Ok(new WithdrawnView(digest, [.. drained]));
        });
        // Body {"name": …} as before; optional "expires" (default 90d), "single_use", "machine" (issue 17).
        api.MapPost("/enrollment-tokens", async (CreateTokenRequest body, HttpContext http, StaffService staffService, EnrollmentService enrollment) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Admin);
            var (token, info) = await enrollment.CreateEnrollmentTokenAsync(me.Username,
                new EnrollmentService.EnrollmentTokenOptions(body.Name ?? "", body.Expires, body.SingleUse ?? false, body.Machine), http.RequestAborted);
            return TypedResults.Ok(StaffEndpoints.Created(token, info));
        });
        api.MapGet("/revisions/{revision:long}/applied", async (long revision, HttpContext http, StaffService staffService, MachineService machines) =>
        {
            await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            var (head, deployed, applied) = await machines.AppliedAsync(revision, http.RequestAborted);
            return TypedResults.Ok(new AppliedView(revision, head, deployed, applied));
        });
        api.MapGet("/events", Events);
    }

    /// <summary>
    /// Server-Sent Events for the dashboard: one "machines" event per change, in any instance; a "health" event when relays
    /// reported to this instance since the last one, at most one per <see cref="FleetLimits.HealthEventInterval"/> (issue 18:
    /// a fleet reporting every few seconds costs each dashboard one fetch per interval, not one per report).
    /// </summary>
    private static async Task Events(HttpContext http, StaffService staffService, MachineEvents events, RelayHealthBoard health)
    {
        await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-store";
        var ct = http.RequestAborted;
        long seen = events.Version, healthSeen = health.Version;
        await http.Response.WriteAsync($"event: machines\ndata: {seen}\n\n", ct);
        await http.Response.Body.FlushAsync(ct);
        long lastWrite = Environment.TickCount64;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                bool changed = await events.WaitAsync(seen, FleetLimits.HealthEventInterval, ct);
                bool reported = health.Version != healthSeen;
                bool heartbeat = Environment.TickCount64 - lastWrite >= (long)FleetLimits.HeartbeatInterval.TotalMilliseconds;
                if (!changed && !reported && !heartbeat) continue;
                // A revoked session or deactivated staff member's open stream ends at its next event or heartbeat.
                if (await staffService.AuthenticateStaffAsync(Auth.Bearer(http), ct) is null) return;
                if (changed)
                {
                    seen = events.Version;
                    await http.Response.WriteAsync($"event: machines\ndata: {seen}\n\n", ct);
                }
                if (reported)
                {
                    healthSeen = health.Version;
                    await http.Response.WriteAsync($"event: health\ndata: {healthSeen}\n\n", ct);
                }
                if (!changed && !reported) await http.Response.WriteAsync(": heartbeat\n\n", ct);
                await http.Response.Body.FlushAsync(ct);
                lastWrite = Environment.TickCount64;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }

    // The dashboard's form sends an empty field for "not given".
    private static string? NullIfEmpty(string? text) => string.IsNullOrWhiteSpace(text) ? null : text;
}

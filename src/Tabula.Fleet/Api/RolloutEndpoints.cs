using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tabula.Fleet.Core;
using Tabula.Fleet.Protocol;

namespace Tabula.Fleet.Api;

/// <summary>
/// Rollouts (issue 18): /api/v1/rollouts for staff (start: admins; pause, resume, abort: operators; latest: viewers; every action
/// with a reason, audited), and /relay/v1/command for relays (their reboot command, and their answer to it).
/// </summary>
public static class RolloutEndpoints
{
    public static void MapRollouts(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/rollouts").RequireRateLimiting(RateLimits.Staff);
        api.MapPost("", async (StartRolloutRequest body, HttpContext http, StaffService staffService, RolloutService rollouts) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Admin);
            var (rollout, machines) = await rollouts.StartAsync(me.Username, new RolloutService.StartRequest(body.Channel, body.Release, body.Digest,
                body.Canary, body.Batch, body.MaxUnavailable, body.DrainSeconds, body.PerLocationMin, body.DeadlineSeconds, body.MinServingPercent,
                body.Reason), http.RequestAborted);
            return TypedResults.Created($"/api/v1/rollouts/{rollout.Id}", RolloutView.From(rollout, machines));
        });
        api.MapGet("/latest", async (HttpContext http, StaffService staffService, RolloutService rollouts) =>
        {
            await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            var latest = await rollouts.LatestAsync(http.RequestAborted) ?? throw new FleetException(FleetError.NotFound, "no rollout has been started");
            return TypedResults.Ok(RolloutView.From(latest.Rollout, latest.Machines));
        });
        // /latest/ACTION acts on the latest rollout; /{id}/ACTION on rollout id, which must be the latest (the dashboard names it, so
        // a page showing an older rollout cannot pause a newer one by mistake).
        foreach (var (verb, action) in new[] { ("pause", RolloutService.StaffAction.Pause), ("resume", RolloutService.StaffAction.Resume),
                     ("abort", RolloutService.StaffAction.Abort) })
        {
            api.MapPost("/latest/" + verb, async (ReasonRequest body, HttpContext http, StaffService staffService, RolloutService rollouts) =>
            {
                var me = await Auth.StaffAsync(http, staffService, StaffRole.Operator);
                var (rollout, machines) = await rollouts.ActAsync(me.Username, action, body.Reason, null, http.RequestAborted);
                return TypedResults.Ok(RolloutView.From(rollout, machines));
            });
            api.MapPost("/{id:long}/" + verb, async (long id, ReasonRequest body, HttpContext http, StaffService staffService, RolloutService rollouts) =>
            {
                var me = await Auth.StaffAsync(http, staffService, StaffRole.Operator);
                var (rollout, machines) = await rollouts.ActAsync(me.Username, action, body.Reason, id, http.RequestAborted);
                return TypedResults.Ok(RolloutView.From(rollout, machines));
            });
        }

        var relay = app.MapGroup(RelayRoutes.Prefix).RequireRateLimiting(RateLimits.Relay);
        // Long poll: the newest command for this boot above `after`, or 204 after RebootCommandPoll (or `wait` seconds). The engine's command
        // wakes every waiting poll (machine events; NOTIFY from other instances).
        relay.MapGet(RelayRoutes.Command, async (long? after, int? wait, HttpContext http, MachineService machines, RolloutService rollouts, MachineEvents events) =>
        {
            // wait: at most this many seconds (0: answer at once), never more than RebootCommandPoll.
            var poll = wait is { } w && w >= 0 && w < FleetLimits.RebootCommandPoll.TotalSeconds ? TimeSpan.FromSeconds(w) : FleetLimits.RebootCommandPoll;
            var deadline = DateTimeOffset.UtcNow + poll;
            while (true)
            {
                long seen = events.Version;
                var machine = await Auth.RelayAsync(http, machines);
                if (await rollouts.CommandForAsync(machine, after ?? 0, http.RequestAborted) is { } command)
                    return (IResult)TypedResults.Ok(new CommandResponse(Convert.ToBase64String(command)));
                var left = deadline - DateTimeOffset.UtcNow;
                if (left <= TimeSpan.Zero) return TypedResults.NoContent();
                await events.WaitAsync(seen, left, http.RequestAborted);
            }
        });
        relay.MapPost(RelayRoutes.CommandAck, async (CommandAckRequest body, HttpContext http, MachineService machines, RolloutService rollouts) =>
        {
            var machine = await Auth.RelayAsync(http, machines);
            await rollouts.AcknowledgeAsync(machine, body.Sequence, body.Accepted, body.Refusal, http.RequestAborted);
            return TypedResults.NoContent();
        });
    }
}

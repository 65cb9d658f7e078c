using System.CommandLine;
using System.Text.Json;
using Tabula.Fleet.Api;

namespace Tabula.Cli.Commands;

/// <summary>
/// `tabula fleet rollout start|status|pause|resume|abort` (issue 18; docs/fleet.md "Rollouts"): the controller reboots the
/// deployed machines into a new release, canary first, then in batches, and halts by itself when one does not come back right.
/// `status --json` prints exactly what GET /api/v1/rollouts/latest answers.
/// </summary>
internal static class FleetRolloutCommand
{
    public static Command Create() => new("rollout",
        "Roll a release through the fleet from the controller: each deployed machine is drained (listed inactive, connections kept), " +
        "sent a signed reboot command, reboots into stboot, comes back on the target and serves again. Canaries first, then batches. " +
        "It halts by itself when a machine misses its deadline, comes back on another digest or unfresh, or the fleet's serving relays drop.")
    {
        Start(), Status(), Act("pause", "Start no more machines (those already out are still brought back)."),
        Act("resume", "Go on after a pause or a halt (read the halt reason first: `rollout status`)."),
        Act("abort", "Stop for good: machines stay as they are (their pinned release too), nothing more starts."),
    };

    private static Command Start()
    {
        var command = new Command("start",
            "Start a rollout of a release to the deployed machines that do not run it (one rollout at a time). The target must be allowed " +
            "(`tabula fleet packages allow`). Example: tabula fleet rollout start --channel stable --release 2 --canary 1 --batch 5 " +
            "--drain-seconds 60 --per-location-min 1 --reason \"r2: kernel fix\"");
        var channel = new Option<string>("--channel") { Required = true, Description = "The provisioning channel the machines boot from (recorded; move it to the release first when boot tickets are not in use)" };
        var release = new Option<long?>("--release") { Description = "Target release number (a release staff named with `tabula fleet releases set-current`)" };
        var digest = new Option<string?>("--digest") { Description = "Target package digest (SHA-256 of the archive, 64 hex), instead of --release" };
        var canary = new Option<int?>("--canary") { Description = "Machines rolled first, all at once, before any batch (default 1; 0: none)" };
        var batch = new Option<int?>("--batch") { Description = "Machines per batch after the canaries; the next batch starts when one is back (default 1)" };
        var maxUnavailable = new Option<string?>("--max-unavailable") { Description = "Batch size as a share of the rollout's machines, e.g. 25% (instead of --batch)" };
        var drain = new Option<int?>("--drain-seconds") { Description = "How long each machine stays listed inactive but serving before it reboots (default 30)" };
        var perLocation = new Option<int?>("--per-location-min") { Description = "Never leave a location with fewer deployed relays than this (default 0)" };
        var deadline = new Option<int?>("--deadline-seconds") { Description = "Halt when a machine is not back (enrolled, then serving) within this after its drain (default 600)" };
        var minServing = new Option<int?>("--min-serving-percent") { Description = "Halt when serving relays fall below this share of those at the start (default 75; 0: off)" };
        var reason = new Option<string>("--reason") { Required = true, Description = "Why (kept in the audit trail)" };
        var json = FleetCommand.Json();
        foreach (var o in new Option[] { channel, release, digest, canary, batch, maxUnavailable, drain, perLocation, deadline, minServing, reason, json })
            command.Options.Add(o);
        var remote = FleetApiClient.Options(command);
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            if (result.GetValue(release) is null == result.GetValue(digest) is null)
                throw new ArgumentException("name the target with --release N or --digest D (one of them)");
            if (result.GetValue(batch) is not null && result.GetValue(maxUnavailable) is not null)
                throw new ArgumentException("give --batch B or --max-unavailable P%, not both");
            int? percent = result.GetValue(maxUnavailable) is { } text ? ParsePercent(text) : null;
            using var client = FleetApiClient.Create(result, remote);
            var view = await FleetApiClient.Call(client, HttpMethod.Post, "/api/v1/rollouts",
                new StartRolloutRequest(result.GetValue(channel), result.GetValue(release), result.GetValue(digest), result.GetValue(canary),
                    result.GetValue(batch), percent, result.GetValue(drain), result.GetValue(perLocation), result.GetValue(deadline),
                    result.GetValue(minServing), result.GetValue(reason)),
                FleetJson.Default.StartRolloutRequest, FleetJson.Default.RolloutView, ct);
            Print(view!, result.GetValue(json));
            return ExitCode.Ok;
        }));
        return command;
    }

    private static int ParsePercent(string text)
    {
        string number = text.EndsWith('%') ? text[..^1] : text;
        return int.TryParse(number, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int p) && p is >= 1 and <= 100
            ? p : throw new ArgumentException($"--max-unavailable is a percentage 1%..100%, not {text}");
    }

    private static Command Status()
    {
        var command = new Command("status", "The latest rollout: its state (running, paused, halted, aborted, completed), why it halted, and each machine's step.");
        var json = FleetCommand.Json();
        command.Options.Add(json);
        var remote = FleetApiClient.Options(command);
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, remote);
            var view = await FleetApiClient.Call(client, HttpMethod.Get, "/api/v1/rollouts/latest", null, null, FleetJson.Default.RolloutView, ct);
            Print(view!, result.GetValue(json));
            return ExitCode.Ok;
        }));
        return command;
    }

    private static Command Act(string verb, string description)
    {
        var command = new Command(verb, description);
        var reason = new Option<string>("--reason") { Required = true, Description = "Why (kept in the audit trail)" };
        var json = FleetCommand.Json();
        command.Options.Add(reason);
        command.Options.Add(json);
        var remote = FleetApiClient.Options(command);
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, remote);
            var view = await FleetApiClient.Call(client, HttpMethod.Post, $"/api/v1/rollouts/latest/{verb}", new ReasonRequest(result.GetValue(reason)),
                FleetJson.Default.ReasonRequest, FleetJson.Default.RolloutView, ct);
            Print(view!, result.GetValue(json));
            return ExitCode.Ok;
        }));
        return command;
    }

    private static void Print(RolloutView r, bool json)
    {
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(r, FleetJson.Default.RolloutView));
            return;
        }
        string size = r.Batch is { } b ? $"batch {b}" : r.MaxUnavailable is { } p ? $"max-unavailable {p}%" : "batch 1";
        Console.WriteLine($"rollout {r.Id}: {r.State}, channel {r.Channel}, " + (r.Release is { } n ? $"release {n} " : "") + $"({r.Digest}), " +
                          $"{r.Done} of {r.Total} done; canary {r.Canary}, {size}, drain {r.DrainSeconds} s, per-location-min {r.PerLocationMin}");
        if (r.HaltReason is { } why) Console.WriteLine($"  halted: {why}");
        foreach (var m in r.Machines)
            Console.WriteLine($"  {m.MachineId}  {m.Hostname ?? "-",-20}  {m.Location ?? "-",-7}  {m.Step,-9}" + (m.Canary ? "  canary" : "") +
                              (m.StartedAt is { } s ? $"  started {s:HH:mm:ss}" : "") + (m.FinishedAt is { } f ? $"  finished {f:HH:mm:ss}" : "") +
                              (m.Reason is { } rs && m.Step is "failed" or "skipped" ? $"  ({rs})" : ""));
    }
}

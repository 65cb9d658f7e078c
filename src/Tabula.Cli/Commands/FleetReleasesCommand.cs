using System.CommandLine;
using System.Text.Json;
using Tabula.Fleet.Api;

namespace Tabula.Cli.Commands;

/// <summary>
/// `tabula fleet releases set-current|floor|list` (freshness, issue 16): which package each machine class boots now, the
/// lowest release it may boot, and which machines sit below it. Changes need the admin role and a reason (audited).
/// </summary>
internal static class FleetReleasesCommand
{
    public static Command Create() => new("releases", "Release per machine class: the current package (named in boot tickets) and the floor.")
    {
        SetCurrent(), Floor(), List(),
    };

    private static Command SetCurrent()
    {
        var command = new Command("set-current", "Make a package the class's current release: boot tickets name it from now on.");
        var machineClass = new Option<string>("--class") { Required = true, Description = "Machine class, e.g. relay (the package manifest's machine_class)" };
        var digest = new Option<string>("--digest") { Required = true, Description = "SHA-256 of the OS package archive, hex" };
        var release = new Option<long>("--release") { Required = true, Description = "The release number in the package's manifest" };
        var reason = new Option<string>("--reason") { Required = true, Description = "Why (kept in the audit trail)" };
        var json = FleetCommand.Json();
        foreach (var o in new Option[] { machineClass, digest, release, reason, json }) command.Options.Add(o);
        var remote = FleetApiClient.Options(command);
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, remote);
            var view = await FleetApiClient.Call(client, HttpMethod.Post, $"/api/v1/releases/{Uri.EscapeDataString(result.GetValue(machineClass)!)}/current",
                new SetCurrentReleaseRequest(result.GetValue(digest), result.GetValue(release), result.GetValue(reason)),
                FleetJson.Default.SetCurrentReleaseRequest, FleetJson.Default.ReleaseClassView, ct);
            Print(view!, result.GetValue(json));
            return ExitCode.Ok;
        }));
        return command;
    }

    private static Command Floor()
    {
        var command = new Command("floor", "Set the lowest release the class may boot (only upwards unless --force).");
        var machineClass = new Option<string>("--class") { Required = true, Description = "Machine class, e.g. relay" };
        var minRelease = new Option<long>("--min-release") { Required = true, Description = "Lowest release stboot may boot (in tickets as min_release)" };
        var force = new Option<bool>("--force") { Description = "Allow lowering the floor, or raising it above the current release (audited)" };
        var reason = new Option<string>("--reason") { Required = true, Description = "Why (kept in the audit trail)" };
        var json = FleetCommand.Json();
        foreach (var o in new Option[] { machineClass, minRelease, force, reason, json }) command.Options.Add(o);
        var remote = FleetApiClient.Options(command);
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, remote);
            var view = await FleetApiClient.Call(client, HttpMethod.Post, $"/api/v1/releases/{Uri.EscapeDataString(result.GetValue(machineClass)!)}/floor",
                new ReleaseFloorRequest(result.GetValue(minRelease), result.GetValue(force), result.GetValue(reason)),
                FleetJson.Default.ReleaseFloorRequest, FleetJson.Default.ReleaseClassView, ct);
            Print(view!, result.GetValue(json));
            return ExitCode.Ok;
        }));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "Per class: current release, floor, machines with their release, those below the floor.");
        var json = FleetCommand.Json();
        command.Options.Add(json);
        var remote = FleetApiClient.Options(command);
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, remote);
            var classes = await FleetApiClient.Call(client, HttpMethod.Get, "/api/v1/releases", null, null, FleetJson.Default.ListReleaseClassView, ct) ?? [];
            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(classes, FleetJson.Default.ListReleaseClassView));
                return ExitCode.Ok;
            }
            foreach (var c in classes)
            {
                Print(c, json: false);
                foreach (var m in c.Machines)
                    Console.WriteLine($"  {m.Id}  {m.State,-11}  {m.Hostname ?? "-",-20}  release {m.Release?.ToString() ?? "?",-6}  {m.Freshness}" +
                                      (m.FreshnessReason is { } why ? $" ({why})" : "") + (m.BelowFloor ? "  BELOW FLOOR" : ""));
            }
            return ExitCode.Ok;
        }));
        return command;
    }

    private static void Print(ReleaseClassView c, bool json) => Console.WriteLine(json
        ? JsonSerializer.Serialize(c, FleetJson.Default.ReleaseClassView)
        : $"{c.MachineClass}: current release {c.CurrentRelease?.ToString() ?? "none"}" +
          (c.CurrentDigest is { } d ? $" ({d})" : "") + $", floor {c.MinRelease}" + (c.Machines.Count > 0 ? $", {c.BelowFloor} of {c.Machines.Count} below it" : ""));
}

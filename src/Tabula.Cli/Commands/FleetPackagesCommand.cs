using System.CommandLine;
using System.Text.Json;
using Tabula.Fleet.Api;

namespace Tabula.Cli.Commands;

/// <summary>`tabula fleet packages allow|list`: packages whose machines may re-enroll without staff.</summary>
internal static class FleetPackagesCommand
{
    public static Command Allow()
    {
        var command = new Command("allow", "Allow machines booted from this package to re-enroll into their previous state.");
        var digest = new Argument<string>("digest") { Description = "SHA-256 of the OS package archive, hex" };
        var reason = new Option<string?>("--reason");
        command.Arguments.Add(digest);
        command.Options.Add(reason);
        var remote = FleetApiClient.Options(command);
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, remote);
            await FleetApiClient.Call<object>(client, HttpMethod.Post, "/api/v1/packages/allowed", new AllowPackageRequest(result.GetValue(digest), result.GetValue(reason)),
                FleetJson.Default.AllowPackageRequest, null, ct);
            return ExitCode.Ok;
        }));
        return command;
    }

    public static Command Withdraw()
    {
        var command = new Command("withdraw",
            "Withdraw an allowed package: machines booting it again wait for staff, and deployed machines running it drain now (audited).");
        var digest = new Argument<string>("digest") { Description = "SHA-256 of the OS package archive, hex" };
        var reason = new Option<string>("--reason") { Description = "Why (recorded in the audit log)", Required = true };
        var json = FleetCommand.Json();
        command.Arguments.Add(digest);
        command.Options.Add(reason);
        command.Options.Add(json);
        var remote = FleetApiClient.Options(command);
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, remote);
            string d = result.GetValue(digest)!;
            var withdrawn = await FleetApiClient.Call(client, HttpMethod.Post, $"/api/v1/packages/allowed/{Uri.EscapeDataString(d)}/withdraw",
                new ReasonRequest(result.GetValue(reason)), FleetJson.Default.ReasonRequest, FleetJson.Default.WithdrawnView, ct);
            if (result.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(withdrawn!, FleetJson.Default.WithdrawnView));
            else
            {
                Console.WriteLine($"withdrawn {withdrawn!.Digest}; draining {withdrawn.Drained.Count} machine(s)");
                foreach (string id in withdrawn.Drained) Console.WriteLine(id);
            }
            return ExitCode.Ok;
        }));
        return command;
    }

    public static Command List()
    {
        var command = new Command("list", "List allowed package digests.");
        var json = FleetCommand.Json();
        command.Options.Add(json);
        var remote = FleetApiClient.Options(command);
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, remote);
            var digests = await FleetApiClient.Call(client, HttpMethod.Get, "/api/v1/packages/allowed", null, null, FleetJson.Default.ListString, ct) ?? [];
            if (result.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(digests, FleetJson.Default.ListString));
            else foreach (var d in digests) Console.WriteLine(d);
            return ExitCode.Ok;
        }));
        return command;
    }
}

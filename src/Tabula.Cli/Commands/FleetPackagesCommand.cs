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

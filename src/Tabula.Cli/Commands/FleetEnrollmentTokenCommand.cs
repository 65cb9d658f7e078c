using System.CommandLine;
using Tabula.Fleet.Api;

namespace Tabula.Cli.Commands;

/// <summary>`tabula fleet enrollment-token create`: tokens relay agents present to enroll (list and revoke: `tabula fleet tokens`).</summary>
internal static class FleetEnrollmentTokenCommand
{
    public static Command Create()
    {
        var command = new Command("create", "Create an enrollment token for relay host configurations (printed once).");
        var name = new Option<string>("--name") { Required = true, Description = "What the token is for" };
        var expires = FleetTokensCommand.Expires("90d; a token in a relay's stboot image is used at every boot, so it must outlive the image");
        var singleUse = new Option<bool>("--single-use") { Description = "Spent by its first enrollment (a second is refused)" };
        var machine = new Option<string?>("--machine") { Description = "Only this machine id (32 hex, from its identity key) may enroll with it" };
        var json = FleetCommand.Json();
        command.Options.Add(name);
        command.Options.Add(expires);
        command.Options.Add(singleUse);
        command.Options.Add(machine);
        command.Options.Add(json);
        var remote = FleetApiClient.Options(command);
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, remote);
            var token = await FleetApiClient.Call(client, HttpMethod.Post, "/api/v1/enrollment-tokens",
                new CreateTokenRequest(result.GetValue(name), result.GetValue(expires), result.GetValue(singleUse) ? true : null, result.GetValue(machine)),
                FleetJson.Default.CreateTokenRequest, FleetJson.Default.TokenResponse, ct);
            FleetTokensCommand.PrintCreated(token!, result.GetValue(json));
            return ExitCode.Ok;
        }));
        return command;
    }
}

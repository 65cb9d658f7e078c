using System.CommandLine;
using System.Text.Json;
using Tabula.Fleet.Api;

namespace Tabula.Cli.Commands;

/// <summary>`tabula fleet enrollment-token create`: tokens relay agents present to enroll.</summary>
internal static class FleetEnrollmentTokenCommand
{
    public static Command Create()
    {
        var command = new Command("create", "Create an enrollment token for relay host configurations (printed once).");
        var name = new Option<string>("--name") { Required = true, Description = "What the token is for" };
        var json = FleetCommand.Json();
        command.Options.Add(name);
        command.Options.Add(json);
        var remote = FleetApiClient.Options(command);
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, remote);
            var token = await FleetApiClient.Call(client, HttpMethod.Post, "/api/v1/enrollment-tokens", new NameRequest(result.GetValue(name)),
                FleetJson.Default.NameRequest, FleetJson.Default.TokenResponse, ct);
            Console.WriteLine(result.GetValue(json) ? JsonSerializer.Serialize(token!, FleetJson.Default.TokenResponse) : token!.Token);
            return ExitCode.Ok;
        }));
        return command;
    }
}

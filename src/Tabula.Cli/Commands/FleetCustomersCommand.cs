using System.CommandLine;
using System.Text.Json;
using Tabula.Fleet.Api;

namespace Tabula.Cli.Commands;

/// <summary>`tabula fleet customers …`: customer accounts and their devices.</summary>
internal static class FleetCustomersCommand
{
    public static Command Create()
    {
        var create = new Command("create", "Create a customer account (a random number; no name, no email). The number is printed this once (the controller keeps only its HMAC); --json adds the account id.");
        var limit = new Option<int?>("--device-limit") { Description = "Devices allowed (default 5)" };
        var json = FleetCommand.Json();
        create.Options.Add(limit);
        create.Options.Add(json);
        var remote = FleetApiClient.Options(create);
        create.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, remote);
            var account = await FleetApiClient.Call(client, HttpMethod.Post, "/api/v1/customers", new CreateAccountRequest(result.GetValue(limit)),
                FleetJson.Default.CreateAccountRequest, FleetJson.Default.AccountView, ct);
            Console.WriteLine(result.GetValue(json) ? JsonSerializer.Serialize(account!, FleetJson.Default.AccountView) : account!.Number);
            return ExitCode.Ok;
        }));

        var show = new Command("devices", "List an account's devices.");
        var number = new Argument<string>("account") { Description = "The account: its id (16 hex digits) or its number" };
        var sjson = FleetCommand.Json();
        show.Arguments.Add(number);
        show.Options.Add(sjson);
        var sremote = FleetApiClient.Options(show);
        show.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, sremote);
            var devices = await FleetApiClient.Call(client, HttpMethod.Get, $"/api/v1/customers/{Uri.EscapeDataString(result.GetValue(number)!)}/devices",
                null, null, FleetJson.Default.ListDeviceView, ct) ?? [];
            if (result.GetValue(sjson)) Console.WriteLine(JsonSerializer.Serialize(devices, FleetJson.Default.ListDeviceView));
            else foreach (var d in devices) Console.WriteLine($"{d.Id}  {d.PublicKey}  {d.Ipv4Address}  {d.Ipv6Address}  revision {d.Revision}");
            return ExitCode.Ok;
        }));

        var delete = new Command("delete", "Delete an account and all its devices.");
        var dnumber = new Argument<string>("account") { Description = "The account: its id (16 hex digits) or its number" };
        var djson = FleetCommand.Json();
        delete.Arguments.Add(dnumber);
        delete.Options.Add(djson);
        var dremote = FleetApiClient.Options(delete);
        delete.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, dremote);
            var revision = await FleetApiClient.Call(client, HttpMethod.Delete, $"/api/v1/customers/{Uri.EscapeDataString(result.GetValue(dnumber)!)}",
                null, null, FleetJson.Default.RevisionResponse, ct);
            Console.WriteLine(result.GetValue(djson) ? JsonSerializer.Serialize(revision!, FleetJson.Default.RevisionResponse) : $"deleted; revision {revision!.Revision}");
            return ExitCode.Ok;
        }));
        return new Command("customers", "Customer accounts.") { create, show, delete };
    }
}

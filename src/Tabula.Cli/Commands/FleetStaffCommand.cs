using System.CommandLine;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Tabula.Fleet;
using Tabula.Fleet.Api;
using Tabula.Fleet.Core;
using Tabula.Fleet.Storage;

namespace Tabula.Cli.Commands;

/// <summary>`tabula fleet staff create` (against the database, before any controller runs) and `staff deactivate|activate|role` (the API, admins).</summary>
internal static class FleetStaffCommand
{
    public static Command Create()
    {
        var db = FleetCommand.Database();
        var secretsKey = FleetCommand.SecretsKey();
        var username = new Option<string>("--username") { Description = "Login name", Required = true };
        var role = new Option<string>("--role") { Description = "viewer, operator or admin", Required = true };
        var token = new Option<string?>("--api-token") { Description = "Also create an API token with this name and print it" };
        var expires = FleetTokensCommand.Expires("90d");
        var json = FleetCommand.Json();
        var command = new Command("create",
            "Create a staff member directly in the database (the first admin). The password is read from the first line of stdin " +
            "or $TABULA_FLEET_PASSWORD.") { db, secretsKey, username, role, token, expires, json };
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            if (!MachineStateNames.TryParseRole(result.GetValue(role), out var staffRole))
                throw new UsageException("--role is viewer, operator or admin");
            string password = Environment.GetEnvironmentVariable("TABULA_FLEET_PASSWORD") ?? Console.In.ReadLine()
                              ?? throw new UsageException("give the password on stdin or in TABULA_FLEET_PASSWORD");
            using var secrets = FleetCommand.LoadSecretsKey(result.GetValue(db)!, result.GetValue(secretsKey));
            await using var store = SqlStore.Open(result.GetValue(db)!, secrets);
            await store.MigrateAsync(ct);
            var staffService = OfflineStaffService(store);
            var staff = await staffService.CreateStaffAsync("cli", result.GetValue(username)!, password, staffRole, ct);
            string? apiToken = result.GetValue(token) is { } name ? await staffService.CreateApiTokenAsync(staff, name, ct, result.GetValue(expires)) : null;
            if (result.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new StaffCreated(staff.Username, staff.Role.Name(), apiToken), FleetJson.Default.StaffCreated));
            else
            {
                Console.WriteLine($"created {staff.Role.Name()} {staff.Username}");
                if (apiToken is not null) Console.WriteLine(apiToken);
            }
            return ExitCode.Ok;
        }));
        return command;
    }

    /// <summary>`staff deactivate|activate USER`: admins switch a staff member off (login, sessions and tokens stop at once) or on.</summary>
    public static Command Switch(bool activate)
    {
        var user = new Argument<string>("username") { Description = "The staff member" };
        var reason = new Option<string?>("--reason") { Description = "Why (in the audit log)" };
        var json = FleetCommand.Json();
        var command = new Command(activate ? "activate" : "deactivate", activate
            ? "Let a deactivated staff member log in again (admins; audited). Their old tokens stay revoked."
            : "Deactivate a staff member (admins; audited): their login, sessions and API tokens stop working at once.") { user, reason, json };
        var remote = FleetApiClient.Options(command);
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, remote);
            var staff = await FleetApiClient.Call(client, HttpMethod.Post,
                $"/api/v1/staff/{Uri.EscapeDataString(result.GetValue(user)!)}/{(activate ? "activate" : "deactivate")}",
                new ReasonRequest(result.GetValue(reason)), FleetJson.Default.ReasonRequest, FleetJson.Default.StaffView, ct);
            Print(staff!, result.GetValue(json));
            return ExitCode.Ok;
        }));
        return command;
    }

    /// <summary>`staff unlock USER`: admins let a staff member locked out by failed logins log in again (audited).</summary>
    public static Command Unlock()
    {
        var user = new Argument<string>("username") { Description = "The staff member" };
        var reason = new Option<string?>("--reason") { Description = "Why (in the audit log)" };
        var json = FleetCommand.Json();
        var command = new Command("unlock",
            "Let a staff member locked out by failed logins in a row log in again, and forget their failed logins (admins; audited).") { user, reason, json };
        var remote = FleetApiClient.Options(command);
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, remote);
            var staff = await FleetApiClient.Call(client, HttpMethod.Post, $"/api/v1/staff/{Uri.EscapeDataString(result.GetValue(user)!)}/unlock",
                new ReasonRequest(result.GetValue(reason)), FleetJson.Default.ReasonRequest, FleetJson.Default.StaffView, ct);
            Print(staff!, result.GetValue(json));
            return ExitCode.Ok;
        }));
        return command;
    }

    /// <summary>`staff role USER ROLE`: admins change a staff member's role (audited); it holds from their next request.</summary>
    public static Command Role()
    {
        var user = new Argument<string>("username") { Description = "The staff member" };
        var role = new Argument<string>("role") { Description = "viewer, operator or admin" };
        var reason = new Option<string?>("--reason") { Description = "Why (in the audit log)" };
        var json = FleetCommand.Json();
        var command = new Command("role", "Change a staff member's role (admins; audited). The last active admin keeps theirs.") { user, role, reason, json };
        var remote = FleetApiClient.Options(command);
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, remote);
            var staff = await FleetApiClient.Call(client, HttpMethod.Post, $"/api/v1/staff/{Uri.EscapeDataString(result.GetValue(user)!)}/role",
                new RoleRequest(result.GetValue(role), result.GetValue(reason)), FleetJson.Default.RoleRequest, FleetJson.Default.StaffView, ct);
            Print(staff!, result.GetValue(json));
            return ExitCode.Ok;
        }));
        return command;
    }

    private static void Print(StaffView staff, bool json) => Console.WriteLine(json
        ? JsonSerializer.Serialize(staff, FleetJson.Default.StaffView)
        : $"{staff.Username}: {staff.Role}, {(staff.Active ? "active" : "deactivated")}{(staff.Locked ? ", locked out" : "")}");

    // Staff accounts are made offline, against the database, before any controller runs (the first admin).
    private static StaffService OfflineStaffService(IStore store)
    {
        var services = new ServiceCollection().AddLogging().AddSingleton(store).AddSingleton(TimeProvider.System)
            .AddSingleton<FleetMetrics>().AddSingleton(new StaffPolicy()).AddSingleton<StaffService>().BuildServiceProvider();
        return services.GetRequiredService<StaffService>();
    }
}

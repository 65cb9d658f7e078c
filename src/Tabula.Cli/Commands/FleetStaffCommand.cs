using System.CommandLine;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Tabula.Fleet;
using Tabula.Fleet.Api;
using Tabula.Fleet.Core;
using Tabula.Fleet.Storage;

namespace Tabula.Cli.Commands;

/// <summary>`tabula fleet staff create`: staff accounts, made against the database before any controller runs.</summary>
internal static class FleetStaffCommand
{
    public static Command Create()
    {
        var db = FleetCommand.Database();
        var username = new Option<string>("--username") { Description = "Login name", Required = true };
        var role = new Option<string>("--role") { Description = "viewer, operator or admin", Required = true };
        var token = new Option<string?>("--api-token") { Description = "Also create an API token with this name and print it" };
        var json = FleetCommand.Json();
        var command = new Command("create",
            "Create a staff member directly in the database (the first admin). The password is read from the first line of stdin " +
            "or $TABULA_FLEET_PASSWORD.") { db, username, role, token, json };
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            if (!MachineStateNames.TryParseRole(result.GetValue(role), out var staffRole))
                throw new UsageException("--role is viewer, operator or admin");
            string password = Environment.GetEnvironmentVariable("TABULA_FLEET_PASSWORD") ?? Console.In.ReadLine()
                              ?? throw new UsageException("give the password on stdin or in TABULA_FLEET_PASSWORD");
            await using var store = SqlStore.Open(result.GetValue(db)!);
            await store.MigrateAsync(ct);
            var staffService = OfflineStaffService(store);
            var staff = await staffService.CreateStaffAsync("cli", result.GetValue(username)!, password, staffRole, ct);
            string? apiToken = result.GetValue(token) is { } name ? await staffService.CreateApiTokenAsync(staff, name, ct) : null;
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

    // Staff accounts are made offline, against the database, before any controller runs (the first admin).
    private static StaffService OfflineStaffService(IStore store)
    {
        var services = new ServiceCollection().AddLogging().AddSingleton(store).AddSingleton(TimeProvider.System)
            .AddSingleton<FleetMetrics>().AddSingleton<StaffService>().BuildServiceProvider();
        return services.GetRequiredService<StaffService>();
    }
}

using System.CommandLine;
using System.Text.Json;
using Tabula.Fleet.Api;

namespace Tabula.Cli.Commands;

/// <summary>`tabula fleet machines …`: list, provision and move machines through their lifecycle.</summary>
internal static class FleetMachinesCommand
{
    public static Command Create()
    {
        var list = new Command("list", "List machines, optionally in one state.");
        var state = new Option<string?>("--state") { Description = "awaiting, provisioned, deployed, draining or retired" };
        var json = FleetCommand.Json();
        list.Options.Add(state);
        list.Options.Add(json);
        var remote = FleetApiClient.Options(list);
        list.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, remote);
            string query = result.GetValue(state) is { } s ? "?state=" + Uri.EscapeDataString(s) : "";
            var machines = await FleetApiClient.Call(client, HttpMethod.Get, "/api/v1/machines" + query, null, null, FleetJson.Default.ListMachineView, ct) ?? [];
            if (result.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(machines, FleetJson.Default.ListMachineView));
            else foreach (var m in machines)
                Console.WriteLine($"{m.Id}  {m.State,-11}  {m.Placement?.Hostname ?? "-",-20}  {m.PackageDigest[..12]}  applied {m.AppliedRevision}" +
                                  $"  release {m.Release?.ToString() ?? "?"}" + (m.MachineClass is { } c ? $" {c} floor {m.Floor ?? 0}" : "") +
                                  (m.BelowFloor ? " BELOW FLOOR" : "") + (m.Freshness is { } f ? $"  {f}" + (m.FreshnessReason is { } r ? $" ({r})" : "") : "") +
                                  AttestationText(m));
            return ExitCode.Ok;
        }));

        // What the latest enrollment's attestation left (issue 19), as the dashboard's column says it; nothing for a machine
        // that enrolled before the controller knew attestation.
        static string AttestationText(MachineView m) => m.Attestation switch
        {
            null => "",
            "attested" => "  attested" + (m.AttestedRelease is > 0 and var r ? $" r{r}" : ""),
            "failed" => $"  attestation failed at {m.AttestationFailedStep ?? "?"}",
            var other => $"  attestation {other}",
        };

        var provision = new Command("provision", "Assign hostname, location and addresses to an awaiting machine.");
        var id = new Argument<string>("machine") { Description = "Machine id" };
        var hostname = new Option<string>("--hostname") { Required = true, Description = "DNS label, e.g. se-got-wg-001" };
        var countryCode = new Option<string>("--country-code") { Required = true, Description = "ISO 3166-1 alpha-2, lowercase" };
        var country = new Option<string>("--country") { Required = true };
        var cityCode = new Option<string>("--city-code") { Required = true, Description = "three lowercase letters" };
        var city = new Option<string>("--city") { Required = true };
        var provider = new Option<string>("--provider") { Required = true };
        var owned = new Option<bool>("--owned") { Description = "The operator owns the hardware" };
        var ipv4 = new Option<string>("--ipv4-in") { Required = true, Description = "Public IPv4 clients connect to" };
        var ipv6 = new Option<string?>("--ipv6-in") { Description = "Public IPv6 clients connect to" };
        var ipv4Out = new Option<string?>("--ipv4-out") { Description = "Public IPv4 customers' traffic leaves from (NAT), if not the --ipv4-in address" };
        var ipv6Out = new Option<string?>("--ipv6-out") { Description = "Public IPv6 customers' traffic leaves from (NAT66), if not the --ipv6-in address" };
        var port = new Option<int>("--port") { DefaultValueFactory = _ => 51820, Description = "WireGuard listen port" };
        var weight = new Option<int>("--weight") { DefaultValueFactory = _ => 100 };
        var latitude = new Option<double?>("--latitude") { Description = "The city's latitude in degrees (default: from the built-in city table)" };
        var longitude = new Option<double?>("--longitude") { Description = "The city's longitude in degrees (default: from the built-in city table)" };
        var reason = new Option<string?>("--reason") { Description = "Why (kept in the audit trail)" };
        var pjson = FleetCommand.Json();
        provision.Arguments.Add(id);
        foreach (var o in new Option[] { hostname, countryCode, country, cityCode, city, provider, owned, ipv4, ipv6, ipv4Out, ipv6Out, port, weight, latitude, longitude, reason, pjson })
            provision.Options.Add(o);
        var premote = FleetApiClient.Options(provision);
        provision.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, premote);
            var body = new ProvisionRequest(result.GetValue(hostname), result.GetValue(countryCode), result.GetValue(country),
                result.GetValue(cityCode), result.GetValue(city), result.GetValue(provider), result.GetValue(owned), result.GetValue(ipv4),
                result.GetValue(ipv6), result.GetValue(port), result.GetValue(weight), true, result.GetValue(reason),
                result.GetValue(latitude), result.GetValue(longitude), result.GetValue(ipv4Out), result.GetValue(ipv6Out));
            var machine = await FleetApiClient.Call(client, HttpMethod.Post, $"/api/v1/machines/{Uri.EscapeDataString(result.GetValue(id)!)}/provision",
                body, FleetJson.Default.ProvisionRequest, FleetJson.Default.MachineView, ct);
            PrintMachine(machine!, result.GetValue(pjson));
            return ExitCode.Ok;
        }));

        var machines = new Command("machines", "Machines and their lifecycle: awaiting → provisioned → deployed → draining → retired.") { list, provision };
        foreach (string action in new[] { "deploy", "drain", "retire" })
        {
            var command = new Command(action, action switch
            {
                "deploy" => "Make a provisioned (or draining) machine serve and appear in the relay list.",
                "drain" => "Keep serving connected clients but stop advertising the relay as active.",
                _ => "Take a machine out of the fleet for good.",
            });
            var machineId = new Argument<string>("machine") { Description = "Machine id" };
            var why = new Option<string?>("--reason") { Description = "Why (kept in the audit trail)" };
            var ajson = FleetCommand.Json();
            var overrideFreshness = new Option<bool>("--override-freshness")
            {
                Description = "Deploy although the machine's boot is not known fresh (no valid boot ticket, below the floor); needs --reason, audited",
            };
            command.Arguments.Add(machineId);
            command.Options.Add(why);
            command.Options.Add(ajson);
            if (action == "deploy") command.Options.Add(overrideFreshness);
            var aremote = FleetApiClient.Options(command);
            command.SetAction((result, ct) => FleetCommand.Guard(async () =>
            {
                using var client = FleetApiClient.Create(result, aremote);
                var machine = await FleetApiClient.Call(client, HttpMethod.Post, $"/api/v1/machines/{Uri.EscapeDataString(result.GetValue(machineId)!)}/{action}",
                    new ReasonRequest(result.GetValue(why), result.GetValue(overrideFreshness) ? true : null), FleetJson.Default.ReasonRequest,
                    FleetJson.Default.MachineView, ct);
                PrintMachine(machine!, result.GetValue(ajson));
                return ExitCode.Ok;
            }));
            machines.Subcommands.Add(command);
        }
        return machines;
    }

    private static void PrintMachine(MachineView machine, bool json) =>
        Console.WriteLine(json ? JsonSerializer.Serialize(machine, FleetJson.Default.MachineView) : $"{machine.Id}  {machine.State}");
}

using System.CommandLine;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.DependencyInjection;
using Tabula.Fleet;
using Tabula.Fleet.Api;
using Tabula.Fleet.Core;
using Tabula.Fleet.Storage;
using Tabula.Packaging;

namespace Tabula.Cli.Commands;

/// <summary>
/// `tabula fleet …`: run the fleet controller and drive it. `serve` and `staff create` work on the database
/// directly (bootstrap: the first admin and its API token); every other verb calls the HTTP API with
/// --server and --token (or TABULA_FLEET_SERVER and TABULA_FLEET_TOKEN), so it is audited under that staff member.
/// </summary>
internal static class FleetCommands
{
    public static Command Create() => new("fleet", "The fleet controller: machines, staff, customers, relay list, peer stream.")
    {
        Serve(),
        new Command("tls", "TLS for the fleet controller.")
        {
            ProvisioningCommands.TlsInit("Tabula fleet CA", "pass it as --fleet-ca to `tabula image relay`"),
        },
        new Command("staff", "Staff accounts.") { StaffCreate() },
        Machines(),
        Customers(),
        new Command("packages", "OS packages allowed to re-enroll without staff.") { PackagesAllow(), PackagesList() },
        new Command("enrollment-token", "Tokens that relay agents present to enroll.") { EnrollmentTokenCreate() },
    };

    private static Option<string> Database() => new("--db")
    {
        Description = "sqlite:PATH or postgres:CONNECTION-STRING (default: $TABULA_FLEET_DB or sqlite:fleet.db)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_DB") ?? "sqlite:fleet.db",
    };
    private static Option<bool> Json() => new("--json") { Description = "Print JSON instead of text" };

    private static Command Serve()
    {
        var db = Database();
        var urls = new Option<string>("--urls")
        {
            Description = "Listen addresses, ';'-separated: https://IP:PORT (TLS, HTTP/2 and HTTP/1.1), http://IP:PORT (HTTP/1.1), " +
                          "h2c://IP:PORT (cleartext HTTP/2) (default: $TABULA_FLEET_URLS or http://127.0.0.1:8380)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_URLS") ?? "http://127.0.0.1:8380",
        };
        var tlsCert = new Option<string?>("--tls-cert")
        {
            Description = "Server certificate (PEM) for https:// addresses, e.g. server.pem of `tabula fleet tls init` (default: $TABULA_FLEET_TLS_CERT)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_TLS_CERT"),
        };
        var tlsKey = new Option<string?>("--tls-key")
        {
            Description = "Its private key (PEM), e.g. server.key (default: $TABULA_FLEET_TLS_KEY)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_TLS_KEY"),
        };
        var v4 = new Option<string>("--ipv4-pool") { Description = "Tunnel IPv4 pool for devices", DefaultValueFactory = _ => "10.64.0.0/10" };
        var v6 = new Option<string>("--ipv6-pool") { Description = "Tunnel IPv6 pool for devices", DefaultValueFactory = _ => "fc00:bbbb:bbbb:bb01::/64" };
        var command = new Command("serve", "Run a controller instance (several may share one PostgreSQL database).") { db, urls, tlsCert, tlsKey, v4, v6 };
        command.SetAction((result, ct) => Guard(async () =>
        {
            var app = await FleetServer.CreateAsync(new FleetOptions
            {
                Database = result.GetValue(db)!, Urls = result.GetValue(urls)!,
                TlsCertificatePath = result.GetValue(tlsCert), TlsKeyPath = result.GetValue(tlsKey),
                Ipv4Pool = result.GetValue(v4)!, Ipv6Pool = result.GetValue(v6)!,
            }, ct);
            await app.RunAsync();
            return ExitCode.Ok;
        }));
        return command;
    }

    private static Command StaffCreate()
    {
        var db = Database();
        var username = new Option<string>("--username") { Description = "Login name", Required = true };
        var role = new Option<string>("--role") { Description = "viewer, operator or admin", Required = true };
        var token = new Option<string?>("--api-token") { Description = "Also create an API token with this name and print it" };
        var json = Json();
        var command = new Command("create",
            "Create a staff member directly in the database (the first admin). The password is read from the first line of stdin " +
            "or $TABULA_FLEET_PASSWORD.") { db, username, role, token, json };
        command.SetAction((result, ct) => Guard(async () =>
        {
            if (!MachineStateNames.TryParseRole(result.GetValue(role), out var staffRole))
                throw new UsageException("--role is viewer, operator or admin");
            string password = Environment.GetEnvironmentVariable("TABULA_FLEET_PASSWORD") ?? Console.In.ReadLine()
                              ?? throw new UsageException("give the password on stdin or in TABULA_FLEET_PASSWORD");
            await using var store = SqlStore.Open(result.GetValue(db)!);
            await store.MigrateAsync(ct);
            var core = OfflineCore(store);
            var staff = await core.CreateStaffAsync("cli", result.GetValue(username)!, password, staffRole, ct);
            string? apiToken = result.GetValue(token) is { } name ? await core.CreateApiTokenAsync(staff, name, ct) : null;
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

    private static FleetCore OfflineCore(IStore store)
    {
        var services = new ServiceCollection().AddLogging().AddSingleton(store).AddSingleton(TimeProvider.System)
            .AddSingleton(AddressPool.Default).AddSingleton<FleetMetrics>().AddSingleton<MachineEvents>()
            .AddSingleton<PeerHub>().AddSingleton<FleetCore>().BuildServiceProvider();
        return services.GetRequiredService<FleetCore>();
    }

    // ---------------------------------------------------------------- remote verbs over the HTTP API

    private sealed record Remote(Option<string> Server, Option<string?> Token, Option<string?> Ca);

    private static Remote RemoteOptions(Command command)
    {
        var server = new Option<string>("--server")
        {
            Description = "Controller URL (default: $TABULA_FLEET_SERVER or http://127.0.0.1:8380)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_SERVER") ?? "http://127.0.0.1:8380",
        };
        var token = new Option<string?>("--token") { Description = "Staff API token (default: $TABULA_FLEET_TOKEN)" };
        var ca = new Option<string?>("--ca")
        {
            Description = "For an https:// server: trust only this CA (PEM, e.g. ca.pem of `tabula fleet tls init`) instead of the system store (default: $TABULA_FLEET_CA)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_CA"),
        };
        command.Options.Add(server);
        command.Options.Add(token);
        command.Options.Add(ca);
        return new Remote(server, token, ca);
    }

    private static HttpClient Client(ParseResult result, Remote remote)
    {
        string token = result.GetValue(remote.Token) ?? Environment.GetEnvironmentVariable("TABULA_FLEET_TOKEN")
                       ?? throw new UsageException("--token or TABULA_FLEET_TOKEN is required");
        var handler = new SocketsHttpHandler();
        if (result.GetValue(remote.Ca) is { } ca)
        {
            // The same pinning as the relay agent's: the chain must end at one of these roots, nothing else is trusted.
            var pinned = new PinnedTlsRoots(CliRun.ParseFile(ca, Packaging.Limits.MaxPemBytes, "CA", bytes => Certificate.ParsePemBundle(bytes)), TimeProvider.System);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, chain, errors) => pinned.Validate(certificate, chain, errors);
        }
        var client = new HttpClient(handler) { BaseAddress = new Uri(result.GetValue(remote.Server)!), Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    private static async Task<T?> Call<T>(HttpClient client, HttpMethod method, string path, object? body, JsonTypeInfo? bodyInfo,
        JsonTypeInfo<T>? resultInfo, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null && bodyInfo is not null) request.Content = JsonContent.Create(body, bodyInfo);
        using var response = await client.SendAsync(request, ct);
        if (!response.IsSuccessStatusCode)
        {
            string message = $"HTTP {(int)response.StatusCode}";
            try
            {
                if (await response.Content.ReadFromJsonAsync(FleetJson.Default.ErrorBody, ct) is { } error) message = $"{error.Message} ({error.Error})";
            }
            catch (JsonException) { }
            throw new RefusedException(message);
        }
        return resultInfo is null || response.StatusCode == System.Net.HttpStatusCode.NoContent
            ? default : await response.Content.ReadFromJsonAsync(resultInfo, ct);
    }

    private static Command Machines()
    {
        var list = new Command("list", "List machines, optionally in one state.");
        var state = new Option<string?>("--state") { Description = "awaiting, provisioned, deployed, draining or retired" };
        var json = Json();
        list.Options.Add(state);
        list.Options.Add(json);
        var remote = RemoteOptions(list);
        list.SetAction((result, ct) => Guard(async () =>
        {
            using var client = Client(result, remote);
            string query = result.GetValue(state) is { } s ? "?state=" + Uri.EscapeDataString(s) : "";
            var machines = await Call(client, HttpMethod.Get, "/api/v1/machines" + query, null, null, FleetJson.Default.ListMachineView, ct) ?? [];
            if (result.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(machines, FleetJson.Default.ListMachineView));
            else foreach (var m in machines)
                Console.WriteLine($"{m.Id}  {m.State,-11}  {m.Placement?.Hostname ?? "-",-20}  {m.PackageDigest[..12]}  applied {m.AppliedRevision}");
            return ExitCode.Ok;
        }));

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
        var port = new Option<int>("--port") { DefaultValueFactory = _ => 51820, Description = "WireGuard listen port" };
        var weight = new Option<int>("--weight") { DefaultValueFactory = _ => 100 };
        var reason = new Option<string?>("--reason") { Description = "Why (kept in the audit trail)" };
        var pjson = Json();
        provision.Arguments.Add(id);
        foreach (var o in new Option[] { hostname, countryCode, country, cityCode, city, provider, owned, ipv4, ipv6, port, weight, reason, pjson })
            provision.Options.Add(o);
        var premote = RemoteOptions(provision);
        provision.SetAction((result, ct) => Guard(async () =>
        {
            using var client = Client(result, premote);
            var body = new ProvisionRequest(result.GetValue(hostname), result.GetValue(countryCode), result.GetValue(country),
                result.GetValue(cityCode), result.GetValue(city), result.GetValue(provider), result.GetValue(owned), result.GetValue(ipv4),
                result.GetValue(ipv6), result.GetValue(port), result.GetValue(weight), true, result.GetValue(reason));
            var machine = await Call(client, HttpMethod.Post, $"/api/v1/machines/{Uri.EscapeDataString(result.GetValue(id)!)}/provision",
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
            var ajson = Json();
            command.Arguments.Add(machineId);
            command.Options.Add(why);
            command.Options.Add(ajson);
            var aremote = RemoteOptions(command);
            command.SetAction((result, ct) => Guard(async () =>
            {
                using var client = Client(result, aremote);
                var machine = await Call(client, HttpMethod.Post, $"/api/v1/machines/{Uri.EscapeDataString(result.GetValue(machineId)!)}/{action}",
                    new ReasonRequest(result.GetValue(why)), FleetJson.Default.ReasonRequest, FleetJson.Default.MachineView, ct);
                PrintMachine(machine!, result.GetValue(ajson));
                return ExitCode.Ok;
            }));
            machines.Subcommands.Add(command);
        }
        return machines;
    }

    private static void PrintMachine(MachineView machine, bool json) =>
        Console.WriteLine(json ? JsonSerializer.Serialize(machine, FleetJson.Default.MachineView) : $"{machine.Id}  {machine.State}");

    private static Command Customers()
    {
        var create = new Command("create", "Create a customer account (a random number; no name, no email).");
        var limit = new Option<int?>("--device-limit") { Description = "Devices allowed (default 5)" };
        var json = Json();
        create.Options.Add(limit);
        create.Options.Add(json);
        var remote = RemoteOptions(create);
        create.SetAction((result, ct) => Guard(async () =>
        {
            using var client = Client(result, remote);
            var account = await Call(client, HttpMethod.Post, "/api/v1/customers", new CreateAccountRequest(result.GetValue(limit)),
                FleetJson.Default.CreateAccountRequest, FleetJson.Default.AccountView, ct);
            Console.WriteLine(result.GetValue(json) ? JsonSerializer.Serialize(account!, FleetJson.Default.AccountView) : account!.Number);
            return ExitCode.Ok;
        }));

        var show = new Command("devices", "List an account's devices.");
        var number = new Argument<string>("account") { Description = "Account number" };
        var sjson = Json();
        show.Arguments.Add(number);
        show.Options.Add(sjson);
        var sremote = RemoteOptions(show);
        show.SetAction((result, ct) => Guard(async () =>
        {
            using var client = Client(result, sremote);
            var devices = await Call(client, HttpMethod.Get, $"/api/v1/customers/{Uri.EscapeDataString(result.GetValue(number)!)}/devices",
                null, null, FleetJson.Default.ListDeviceView, ct) ?? [];
            if (result.GetValue(sjson)) Console.WriteLine(JsonSerializer.Serialize(devices, FleetJson.Default.ListDeviceView));
            else foreach (var d in devices) Console.WriteLine($"{d.Id}  {d.PublicKey}  {d.Ipv4Address}  {d.Ipv6Address}  revision {d.Revision}");
            return ExitCode.Ok;
        }));

        var delete = new Command("delete", "Delete an account and all its devices.");
        var dnumber = new Argument<string>("account") { Description = "Account number" };
        var djson = Json();
        delete.Arguments.Add(dnumber);
        delete.Options.Add(djson);
        var dremote = RemoteOptions(delete);
        delete.SetAction((result, ct) => Guard(async () =>
        {
            using var client = Client(result, dremote);
            var revision = await Call(client, HttpMethod.Delete, $"/api/v1/customers/{Uri.EscapeDataString(result.GetValue(dnumber)!)}",
                null, null, FleetJson.Default.RevisionResponse, ct);
            Console.WriteLine(result.GetValue(djson) ? JsonSerializer.Serialize(revision!, FleetJson.Default.RevisionResponse) : $"deleted; revision {revision!.Revision}");
            return ExitCode.Ok;
        }));
        return new Command("customers", "Customer accounts.") { create, show, delete };
    }

    private static Command PackagesAllow()
    {
        var command = new Command("allow", "Allow machines booted from this package to re-enroll into their previous state.");
        var digest = new Argument<string>("digest") { Description = "SHA-256 of the OS package archive, hex" };
        var reason = new Option<string?>("--reason");
        command.Arguments.Add(digest);
        command.Options.Add(reason);
        var remote = RemoteOptions(command);
        command.SetAction((result, ct) => Guard(async () =>
        {
            using var client = Client(result, remote);
            await Call<object>(client, HttpMethod.Post, "/api/v1/packages/allowed", new AllowPackageRequest(result.GetValue(digest), result.GetValue(reason)),
                FleetJson.Default.AllowPackageRequest, null, ct);
            return ExitCode.Ok;
        }));
        return command;
    }

    private static Command PackagesList()
    {
        var command = new Command("list", "List allowed package digests.");
        var json = Json();
        command.Options.Add(json);
        var remote = RemoteOptions(command);
        command.SetAction((result, ct) => Guard(async () =>
        {
            using var client = Client(result, remote);
            var digests = await Call(client, HttpMethod.Get, "/api/v1/packages/allowed", null, null, FleetJson.Default.ListString, ct) ?? [];
            if (result.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(digests, FleetJson.Default.ListString));
            else foreach (var d in digests) Console.WriteLine(d);
            return ExitCode.Ok;
        }));
        return command;
    }

    private static Command EnrollmentTokenCreate()
    {
        var command = new Command("create", "Create an enrollment token for relay host configurations (printed once).");
        var name = new Option<string>("--name") { Required = true, Description = "What the token is for" };
        var json = Json();
        command.Options.Add(name);
        command.Options.Add(json);
        var remote = RemoteOptions(command);
        command.SetAction((result, ct) => Guard(async () =>
        {
            using var client = Client(result, remote);
            var token = await Call(client, HttpMethod.Post, "/api/v1/enrollment-tokens", new NameRequest(result.GetValue(name)),
                FleetJson.Default.NameRequest, FleetJson.Default.TokenResponse, ct);
            Console.WriteLine(result.GetValue(json) ? JsonSerializer.Serialize(token!, FleetJson.Default.TokenResponse) : token!.Token);
            return ExitCode.Ok;
        }));
        return command;
    }

    /// <summary>The controller refused (4xx): exit 1. Bad usage or unreachable server: exit 2.</summary>
    private sealed class RefusedException(string message) : Exception(message);

    private static async Task<int> Guard(Func<Task<int>> body)
    {
        try { return await CliRun.GuardAsync(body); }
        catch (RefusedException e) { Console.Error.WriteLine($"tabula: refused: {e.Message}"); return ExitCode.Rejected; }
        catch (FleetException e) { Console.Error.WriteLine($"tabula: error: {e.Message}"); return ExitCode.BadInput; }
        catch (System.Data.Common.DbException e) { Console.Error.WriteLine($"tabula: database error: {e.Message}"); return ExitCode.BadInput; }
    }
}

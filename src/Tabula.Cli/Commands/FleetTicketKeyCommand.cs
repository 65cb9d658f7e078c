using System.CommandLine;
using Tabula.Fleet.Security;

namespace Tabula.Cli.Commands;

/// <summary>
/// `tabula fleet ticket-key [--out PEM]`: the controller's boot-ticket key's public half (SPKI PEM), the stboot trust
/// policy's ticket_root.pem. From a running controller (--server/--token), or --offline from the key file itself (made if
/// missing, exactly as `serve` would at first start): --ticket-key PATH, or ticket-key.pem next to the --db SQLite file.
/// </summary>
internal static class FleetTicketKeyCommand
{
    public static Command Create()
    {
        var command = new Command("ticket-key", "Export the boot-ticket public key (the trust policy's ticket_root.pem).");
        var output = new Option<string?>("--out") { Description = "Write the PEM here (default: print it)" };
        var offline = new Option<bool>("--offline") { Description = "Read (or make) the key file instead of asking a running controller" };
        var keyPath = new Option<string?>("--ticket-key")
        {
            Description = "With --offline: the key file (default: $TABULA_FLEET_TICKET_KEY, else ticket-key.pem next to the --db SQLite file)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_TICKET_KEY"),
        };
        var db = FleetCommand.Database();
        foreach (var o in new Option[] { output, offline, keyPath, db }) command.Options.Add(o);
        var remote = FleetApiClient.Options(command);
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            string pem;
            if (result.GetValue(offline))
            {
                using var key = TicketKey.LoadOrCreate(result.GetValue(keyPath) ?? TicketKey.DefaultPath(result.GetValue(db)!));
                pem = key.PublicKeyPem;
            }
            else
            {
                using var client = FleetApiClient.Create(result, remote);
                using var response = await client.GetAsync("/api/v1/ticket-key", ct);
                if (!response.IsSuccessStatusCode) throw new FleetCommand.RefusedException($"HTTP {(int)response.StatusCode}");
                pem = await response.Content.ReadAsStringAsync(ct);
                // What we write goes into stboot images: only a well-formed Ed25519 public key.
                try { Packaging.Pem.ReadSingle(System.Text.Encoding.UTF8.GetBytes(pem), "PUBLIC KEY"); }
                catch (Packaging.PackageFormatException e) { throw new FleetCommand.RefusedException($"the controller sent no PUBLIC KEY PEM: {e.Message}"); }
            }
            if (result.GetValue(output) is { } path)
                CliRun.WriteAtomically(path, stream => { stream.Write(System.Text.Encoding.ASCII.GetBytes(pem)); return 0; });
            else Console.Write(pem);
            return ExitCode.Ok;
        }));
        return command;
    }
}

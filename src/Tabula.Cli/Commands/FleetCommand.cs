using System.CommandLine;
using Tabula.Fleet;

namespace Tabula.Cli.Commands;

/// <summary>
/// `tabula fleet …`: run the fleet controller and drive it. `serve` and `staff create` work on the database
/// directly (bootstrap: the first admin and its API token); every other verb calls the HTTP API with
/// --server and --token (or TABULA_FLEET_SERVER and TABULA_FLEET_TOKEN), so it is audited under that staff member.
/// </summary>
internal static class FleetCommand
{
    public static Command Create() => new("fleet", "The fleet controller: machines, staff, customers, relay list, peer stream.")
    {
        FleetServeCommand.Create(),
        new Command("tls", "TLS for the fleet controller.")
        {
            ProvisioningCommands.TlsInit("Tabula fleet CA", "pass it as --fleet-ca to `tabula image relay`"),
        },
        new Command("staff", "Staff accounts.") { FleetStaffCommand.Create(), FleetStaffCommand.Switch(activate: false), FleetStaffCommand.Switch(activate: true), FleetStaffCommand.Role(), FleetStaffCommand.Unlock() },
        FleetTokensCommand.Create(),
        FleetMachinesCommand.Create(),
        FleetCustomersCommand.Create(),
        FleetVouchersCommand.Create(),
        new Command("packages", "OS packages allowed to re-enroll without staff.") { FleetPackagesCommand.Allow(), FleetPackagesCommand.List(), FleetPackagesCommand.Withdraw() },
        new Command("enrollment-token", "Tokens that relay agents present to enroll.") { FleetEnrollmentTokenCommand.Create() },
        FleetReleasesCommand.Create(),
        FleetRolloutCommand.Create(),
        FleetTicketKeyCommand.Create(),
        FleetAttestationCaCommand.Create(),
    };

    /// <summary>`--attestation-ca`: the controller's attestation CA file (issue 19) of `serve` and `fleet attestation-ca --offline`.</summary>
    internal static Option<string?> AttestationCa() => new("--attestation-ca")
    {
        Description = "Attestation CA (ECDSA PKCS#8 key and its certificate, PEM, mode 0600) that certifies attested relays' AKs, made at first " +
                      "start if missing (default: $TABULA_FLEET_ATTESTATION_CA, else attestation-ca.pem next to the SQLite database; required " +
                      "with PostgreSQL: the same file on every instance)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_ATTESTATION_CA"),
    };

    internal static Option<string> Database() => new("--db")
    {
        Description = "sqlite:PATH or postgres:CONNECTION-STRING (default: $TABULA_FLEET_DB or sqlite:fleet.db)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_DB") ?? "sqlite:fleet.db",
    };
    /// <summary>`--secrets-key`: the at-rest key of `serve` and of the commands that open the database directly.</summary>
    internal static Option<string?> SecretsKey() => new("--secrets-key")
    {
        Description = "At-rest key (64 hex digits, mode 0600; accounts are kept as the HMAC of their number, TOTP secrets sealed), " +
                      "made at first start if missing; refused if group or others may read it. Back it up apart from the database: " +
                      "without it every account is lost (default: $TABULA_FLEET_SECRETS_KEY, else fleet-secrets.key next to the SQLite " +
                      "database; required with PostgreSQL: the same file on every instance)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_SECRETS_KEY"),
    };

    /// <summary>The at-rest key for <paramref name="database"/>: <paramref name="path"/>, else the default next to a SQLite database.</summary>
    internal static Tabula.Fleet.Security.SecretsKey LoadSecretsKey(string database, string? path) =>
        Tabula.Fleet.Security.SecretsKey.LoadOrCreate(path ?? Tabula.Fleet.Security.SecretsKey.DefaultPath(database));

    internal static Option<bool> Json() => new("--json") { Description = "Print JSON instead of text" };

    /// <summary>The controller refused (4xx): exit 1. Bad usage or unreachable server: exit 2.</summary>
    internal sealed class RefusedException(string message) : Exception(message);

    internal static async Task<int> Guard(Func<Task<int>> body)
    {
        try { return await CliRun.GuardAsync(body); }
        catch (RefusedException e) { Console.Error.WriteLine($"tabula: refused: {e.Message}"); return ExitCode.Rejected; }
        catch (FleetException e) { Console.Error.WriteLine($"tabula: error: {e.Message}"); return ExitCode.BadInput; }
        catch (System.Data.Common.DbException e) { Console.Error.WriteLine($"tabula: database error: {e.Message}"); return ExitCode.BadInput; }
    }
}

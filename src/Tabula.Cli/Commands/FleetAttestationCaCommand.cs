using System.CommandLine;
using Tabula.Fleet.Security;

namespace Tabula.Cli.Commands;

/// <summary>
/// `tabula fleet attestation-ca [--out PEM]` (issue 19): the certificate of the CA under which the controller issues AK
/// certificates to attested relays (the relay list's ak_certificate). From a running controller (GET /app/v1/attestation-ca),
/// or --offline from the CA file itself (made if missing, exactly as `serve` would at first start).
/// </summary>
internal static class FleetAttestationCaCommand
{
    public static Command Create()
    {
        var command = new Command("attestation-ca", "Export the attestation CA certificate (AK certificates in the relay list chain to it).");
        var output = new Option<string?>("--out") { Description = "Write the PEM here (default: print it)" };
        var offline = new Option<bool>("--offline") { Description = "Read (or make) the CA file instead of asking a running controller" };
        var caPath = FleetCommand.AttestationCa();
        var db = FleetCommand.Database();
        foreach (var o in new Option[] { output, offline, caPath, db }) command.Options.Add(o);
        var remote = FleetApiClient.Options(command);
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            string pem;
            if (result.GetValue(offline))
            {
                using var ca = AttestationCa.LoadOrCreate(result.GetValue(caPath) ?? AttestationCa.DefaultPath(result.GetValue(db)!));
                pem = ca.CertificatePem;
            }
            else
            {
                using var client = FleetApiClient.Create(result, remote);
                using var response = await client.GetAsync("/app/v1/attestation-ca", ct);
                if (!response.IsSuccessStatusCode) throw new FleetCommand.RefusedException($"HTTP {(int)response.StatusCode}");
                pem = await response.Content.ReadAsStringAsync(ct);
                try { using var _ = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(pem); }
                catch (System.Security.Cryptography.CryptographicException e) { throw new FleetCommand.RefusedException($"the controller sent no certificate PEM: {e.Message}"); }
            }
            if (result.GetValue(output) is { } path)
                CliRun.WriteAtomically(path, stream => { stream.Write(System.Text.Encoding.ASCII.GetBytes(pem)); return 0; });
            else Console.Write(pem);
            return ExitCode.Ok;
        }));
        return command;
    }
}

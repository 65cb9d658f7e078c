using System.CommandLine;
using System.Net;
using Tabula.Provisioning.Client;

namespace Tabula.Cli.Commands;

/// <summary>
/// `tabula publish NAME.json NAME.zip --server URL [--channel C]`: uploads a signed OS package to a provisioning
/// server with a staff token (TABULA_TOKEN or --token-file). The server verifies it against its trust policy.
/// Exit 0 accepted, 1 refused by the trust policy, 2 any other failure.
/// </summary>
public static class PublishCommand
{
    public static Command Create()
    {
        var descriptor = new Argument<FileInfo>("descriptor") { Description = "The signed descriptor (NAME.json)" };
        var archive = new Argument<FileInfo>("archive") { Description = "The archive (NAME.zip)" };
        var server = ProvisioningCli.ServerOption();
        var channel = new Option<string?>("--channel", "-c")
        {
            Description = "Point this channel (e.g. stable, testing) at the package once accepted",
        };
        var ca = ProvisioningCli.CaOption();
        var tokenFile = ProvisioningCli.TokenFileOption();
        var command = new Command("publish", "Upload a signed OS package to a provisioning server.")
        {
            descriptor, archive, server, channel, ca, tokenFile,
        };
        command.SetAction((result, ct) => ProvisioningCli.RunAsync(async () =>
        {
            using var client = ProvisioningCli.Client(result, server, ca, tokenFile, TimeSpan.FromHours(1));
            var answer = await client.PublishAsync(result.GetValue(descriptor)!.FullName,
                result.GetValue(archive)!.FullName, result.GetValue(channel), ct);
            if (answer.Value is { } published)
            {
                Console.WriteLine($"accepted: archive sha256:{published.ArchiveSha256} ({published.ArchiveLength} bytes), " +
                                  $"{published.Verification.Valid} valid signatures, {published.Verification.Required} required");
                Console.WriteLine($"descriptor: {published.DescriptorUrl}");
                Console.WriteLine($"archive:    {published.ArchiveUrl}");
                if (published.Channel is not null)
                    Console.WriteLine($"channel {published.Channel} -> sha256:{published.ArchiveSha256}");
                return 0;
            }
            ProvisioningCli.PrintError(answer.Status, answer.Error);
            if (answer.Error?.Verification is { } verdict)
                foreach (var s in verdict.Signatures.Where(s => !s.Valid))
                    Console.Error.WriteLine($"  signature {s.Index}: {s.Reason}");
            return answer.Status == HttpStatusCode.UnprocessableEntity ? 1 : 2;
        }));
        return command;
    }
}

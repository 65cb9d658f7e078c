using System.CommandLine;
using Tabula.Lab;
using System.Globalization;
using Tabula.Images;
using Tabula.Images.Relay;

namespace Tabula.Cli.Commands;

/// <summary>`tabula image relay`: the relay OS package (Tabula.Images.Relay), unsigned, laid out like `ospkg create`'s.</summary>
internal static class ImageRelayCommand
{
    /// <summary>The size goal for the whole package (issue 6): 50 MB, decimal.</summary>
    public const long GoalBytes = 50_000_000;

    public static Command Create()
    {
        var release = new Option<string>("--kernel-release") { Description = "Kernel release (uname -r): kernel /boot/vmlinuz-RELEASE, modules from --modules-root/RELEASE", Required = true };
        var fleetUrl = new Option<string[]>("--fleet-url")
        {
            Description = "The fleet controller's base URL, https://HOST[:PORT][/PATH], HOST an IP address or a DNS name the relay resolves through the resolvers of its host configuration or DHCP lease (goes into /etc/tabula/relay.json). " +
                          "Repeat it (or give a comma-separated list) for several controller instances: the relay tries them in this order and fails over",
            Required = true, AllowMultipleArgumentsPerToken = false,
        };
        var fleetCa = new Option<string>("--fleet-ca") { Description = "PEM with the CA certificate(s) the agent pins for the controller (e.g. ca.pem of `tabula fleet tls init`)", Required = true };
        var kernel = new Option<string?>("--kernel") { Description = "Kernel image (default: /boot/vmlinuz-RELEASE)" };
        var cmdline = new Option<string>("--cmdline") { Description = "Kernel command line of the relay OS (must keep init_on_free=1: freed memory zeroed)", DefaultValueFactory = _ => RelayImageInputs.DefaultCmdline };
        var modules = new Option<string>("--modules")
        {
            Description = "Comma-separated module names; their closure from modules.dep is added (add real NICs' drivers, e.g. e1000e,igb)",
            DefaultValueFactory = _ => string.Join(',', RelayImageInputs.DefaultModules),
        };
        var modulesRoot = new Option<string>("--modules-root") { Description = "Where module trees live", DefaultValueFactory = _ => "/lib/modules" };
        var agent = new Option<string?>("--agent") { Description = "The static tabula-relay binary for /init (default: $TABULA_RELAY_BINARY, tabula-relay beside tabula, or out/relay/tabula-relay in the repository checkout, published there first when missing or stale)" };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of text" };
        var output = new OsPackageOutput();
        var releaseOptions = new ReleaseOptions();
        var command = new Command("relay",
            "Build the relay OS package: NAME.zip (kernel, command line, initramfs with the tabula-relay agent as /init, the fleet URL, " +
            "the pinned fleet CA and the module closure) and an unsigned NAME.json for `tabula ospkg sign`. Same inputs give the same bytes.")
        {
            release, fleetUrl, fleetCa, kernel, cmdline, modules, modulesRoot, agent, json,
        };
        foreach (var option in releaseOptions.Options.Concat(output.Options)) command.Options.Add(option);
        command.SetAction(result => CliRun.Guard(() =>
        {
            var (packageRelease, machineClass) = releaseOptions.Resolve(result);
            var target = output.Resolve(result);
            string agentPath = result.GetValue(agent) ?? ImageCommand.FindBinary(NativeBinaries.Relay, "--agent");
            string[] fleetUrls = [.. result.GetValue(fleetUrl)!.SelectMany(u => u.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))];
            if (fleetUrls.Length == 0) throw new UsageException("--fleet-url is required");
            var inputs = new RelayImageInputs(agentPath, result.GetValue(release)!, fleetUrls[0], result.GetValue(fleetCa)!,
                result.GetValue(modules)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                MoreFleetUrls = fleetUrls[1..],
                Kernel = result.GetValue(kernel),
                Cmdline = result.GetValue(cmdline)!,
                ModulesRoot = result.GetValue(modulesRoot)!,
                Release = packageRelease,
                MachineClass = machineClass,
            };
            RelayImageSummary summary;
            long zipBytes;
            byte[] digest;
            try { (summary, zipBytes, digest) = target.Write(zip => RelayImage.Write(inputs, zip)); }
            catch (ImageException e) { throw new UsageException(e.Message); }

            if (zipBytes > GoalBytes)
                CliRun.Warn($"{target.ZipPath} has {zipBytes} bytes, over the {Megabytes(GoalBytes)} goal");
            if (result.GetValue(json))
            {
                CliJsonContext.Print(new RelayImageOutput(target.ZipPath, target.JsonPath, target.Url, Packaging.Hex.Encode(digest), zipBytes,
                    GoalBytes, zipBytes <= GoalBytes, inputs.KernelPath, summary.KernelBytes, summary.InitramfsBytes, summary.InitramfsUncompressedBytes,
                    agentPath, summary.InitBytes, summary.Manifest.Cmdline, inputs.FleetUrl,
                    summary.FleetCa.Select(c => c.CommonName ?? "").ToList(), summary.ModuleLoadOrder,
                    packageRelease == 0 ? null : packageRelease, machineClass, inputs.MoreFleetUrls.Count > 0 ? inputs.FleetUrls : null), CliJsonContext.Default.RelayImageOutput);
                return ExitCode.Ok;
            }
            target.Print(zipBytes, digest, summary.Manifest);
            Console.WriteLine($"  size: package {zipBytes} bytes = {Megabytes(zipBytes)} (goal ≤ {Megabytes(GoalBytes)}: " +
                              $"{(zipBytes <= GoalBytes ? "met" : "NOT met")})");
            Console.WriteLine($"        kernel {summary.KernelBytes} bytes, initramfs {summary.InitramfsBytes} bytes gzip " +
                              $"({summary.InitramfsUncompressedBytes} bytes in RAM), /init {summary.InitBytes} bytes ({agentPath})");
            Console.WriteLine($"  fleet {string.Join(", then ", inputs.FleetUrls)}, pinned CA: " +
                              string.Join(", ", summary.FleetCa.Select(c => $"\"{c.CommonName}\" until {c.NotAfter.UtcDateTime:yyyy-MM-dd}")));
            Console.WriteLine($"  {summary.ModuleLoadOrder.Count} modules (closure of {string.Join(',', inputs.Modules)})");
            foreach (string module in summary.ModuleLoadOrder)
                Console.WriteLine($"    {module}");
            Console.WriteLine($"next: tabula ospkg sign --key SIGNER.key --cert SIGNER.pem {target.JsonPath}");
            return ExitCode.Ok;
        }));
        return command;
    }

    static string Megabytes(long bytes) => (bytes / 1e6).ToString("0.0", CultureInfo.InvariantCulture) + " MB";
}

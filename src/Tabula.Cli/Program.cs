using System.CommandLine;
using Tabula.Cli.Commands;

// The `tabula` command. Each verb lives in Commands/ and exposes Create(); this file only composes them.
var root = new RootCommand(
    "Tabula: disk-less fleets that boot a signed OS into RAM.\n" +
    "OS packages are System Transparency compatible: NAME.zip (kernel, initramfs, manifest) plus\n" +
    "NAME.json (descriptor with n-of-m Ed25519 signatures under X.509 roots).\n\n" +
    "Typical flow:\n" +
    "  tabula keygen root --out keys/root\n" +
    "  tabula keygen leaf --root-key keys/root.key --root-cert keys/root.pem --out keys/signer1\n" +
    "  tabula ospkg create --kernel vmlinuz --initramfs initrd.img --out os\n" +
    "  tabula ospkg sign --key keys/signer1.key --cert keys/signer1.pem os.json\n" +
    "  tabula ospkg verify --descriptor os.json --archive os.zip --roots keys/root.pem --threshold 1\n" +
    "  tabula image stboot --trust-policy trust --host-config host.json --kernel-release 6.1.0-56-amd64 --modules virtio_net --out stboot.cpio.gz\n" +
    "  tabula image relay --kernel-release 6.1.0-56-amd64 --fleet-url https://10.0.0.1:9443 --fleet-ca tls/ca.pem --out relay\n\n" +
    "Exit codes: 0 success/accepted, 1 rejected, 2 unusable input or error.")
{
    KeygenCommand.Create(),
    OsPkgCommand.Create(),
    HostConfigCommand.Create(),
    TrustPolicyCommand.Create(),
    ImageCommand.Create(),
    DemoCommand.Create(),
    PublishCommand.Create(),
    ProvisioningCommands.Create(),
    FleetCommand.Create(),
    LabCommand.Create(),
    RelayCommand.Create(),
};
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    // Usage mistakes are unusable input (exit 2), never "rejected" (1), which System.CommandLine would return.
    foreach (var error in parsed.Errors) Console.Error.WriteLine($"tabula: error: {error.Message}");
    Console.Error.WriteLine("Run with --help for usage.");
    return 2;
}
return parsed.Invoke();

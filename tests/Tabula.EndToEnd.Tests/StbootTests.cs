using Tabula.EndToEnd.Tests.Harness;
using Tabula.Testing;
using Tabula.Testing.Packages;

namespace Tabula.EndToEnd.Tests;

/// <summary>
/// stboot end to end under QEMU (TCG): the static tabula-boot as /init of an image from Tabula.Images, on the Debian
/// guest kernel, in a tap namespace with no route out. The OS it boots is a signed package whose /init prints the
/// hand-over digest (<see cref="OsPackages"/>). Cases are grouped to keep the number of boots at three; every
/// behaviour is asserted from the serial console.
/// </summary>
[Collection(BootCollection.Name)]
public sealed class StbootTests(BootBinary boot, ITestOutputHelper output) : IDisposable
{
    static readonly TimeSpan Stage = TimeSpan.FromSeconds(120);
    readonly string work = Directory.CreateTempSubdirectory("tabula-e2e-").FullName;
    readonly TestSigner root = SignedPackages.Root();

    public void Dispose() => Directory.Delete(work, recursive: true);

    OsPackages Os => OsPackages.For(boot);

    (byte[] Descriptor, byte[] Archive) Package(string url, params TestSigner[] signers) => (SignedPackages.Descriptor(Os.Archive, url, signers), Os.Archive);

    string Trust(string name, int threshold, string method, string? tlsRoots = null) =>
        SignedPackages.TrustPolicy(Path.Combine(work, name), threshold, method, [root], tlsRoots);

    void Report(QemuMachine machine, string image)
    {
        output.WriteLine($"stboot image {new FileInfo(image).Length} bytes, /init {new FileInfo(boot.Path).Length} bytes, OS archive {Os.Archive.Length} bytes");
        foreach (string line in machine.Console.Split('\n').Where(l => l.Contains("tabula-boot:") || l.Contains("TABULA-MARKER")))
            output.WriteLine(line);
        output.WriteLine($"log: {machine.ConsoleLog}");
    }

    /// <summary>
    /// Cases 1-4 in one boot, static IPv4. ospkg_pointer lists a dead URL, a hostile mirror and the provisioning server
    /// (HTTPS, dev CA pinned via tls_roots.pem), which is down at first. Round by round the mirror serves a tampered
    /// archive, a package under the threshold, one signed under another root, one with expired leaves, then 404; each
    /// refusal is a typed line and nothing is kexeced. Once the expired package has been refused the test starts the
    /// provisioning server; the next round boots its package (3 signatures, 2 valid, threshold 2) and the OS prints
    /// the digest stboot handed over.
    /// </summary>
    [GuestKernelFact(needsRoot: true, "qemu-system-x86_64", "ip", "clang")]
    public async Task Network_boot_refuses_bad_packages_round_by_round_skips_a_dead_url_waits_for_the_server_then_kexecs_the_valid_one()
    {
        Prerequisites.Require(needsRoot: true, "qemu-system-x86_64", "ip", "clang");
        GuestKernel kernel = GuestKernel.Require();
        using var network = TapNetwork.Create();
        using var provisioning = ProvisioningProcess.Prepare(network, Trust("prov-trust", 2, "network"));
        var signers = new[] { SignedPackages.Leaf(root), SignedPackages.Leaf(root), SignedPackages.Leaf(root) };
        var stranger = SignedPackages.Leaf(SignedPackages.Root());

        // Valid: three entries, the middle one signed by a key outside the root: 3 found, 2 valid, 2 required.
        byte[] validDescriptor = SignedPackages.Descriptor(Os.Archive, "", signers[0], stranger, signers[2]);
        string digest = await provisioning.PublishAsync(validDescriptor, Os.Archive, "stable");
        Assert.Equal(Os.Sha256Hex, digest);

        var other = SignedPackages.Root();
        var past = DateTimeOffset.UtcNow.AddDays(-30);
        byte[] tampered = (byte[])Os.Archive.Clone();
        tampered[tampered.Length / 2] ^= 0x01;
        var variants = new (string Name, byte[] Descriptor, byte[] Archive)[]
        {
            ("tampered", SignedPackages.Descriptor(Os.Archive, "os.zip", signers), tampered),
            ("under-threshold", SignedPackages.Descriptor(Os.Archive, "os.zip", signers[1]), Os.Archive),
            ("other-root", SignedPackages.Descriptor(Os.Archive, "os.zip", SignedPackages.Leaf(other), SignedPackages.Leaf(other)), Os.Archive),
            ("expired", SignedPackages.Descriptor(Os.Archive, "os.zip", SignedPackages.Leaf(root, past, past.AddDays(3)), SignedPackages.Leaf(root, past, past.AddDays(3))), Os.Archive),
        };
        int round = 0;
        using var mirror = MirrorServer.Start(network, 8080, path =>
        {
            lock (variants)
            {
                if (round >= variants.Length)
                    return (404, "gone"u8.ToArray());
                var v = variants[round];
                if (path == "/os.json")
                    return (200, v.Descriptor);
                if (path == "/os.zip")
                {
                    round++;    // the next round gets the next variant
                    return (200, v.Archive);
                }
                return (404, []);
            }
        });

        string host = network.HostAddress.ToString();
        string dead = $"https://{host}:8444/os.json", mirrorUrl = $"http://{host}:8080/os.json", server = $"{provisioning.BaseUrl}/channels/stable.json";
        string image = Os.StbootImage("stboot-network", Trust("trust", 2, "network", provisioning.CaPem), $$"""
            {"network_mode": "static", "host_ip": "{{network.GuestAddress}}/24", "gateway": "{{host}}", "dns": ["{{host}}"],
             "network_interfaces": [{"interface_name": "eth0", "mac_address": "52:54:00:7a:b0:01"}],
             "ospkg_pointer": "{{dead}},{{mirrorUrl}},{{server}}"}
            """, ["virtio_net", "virtio_pci"]);

        using var machine = Guest.Start(nameof(Network_boot_refuses_bad_packages_round_by_round_skips_a_dead_url_waits_for_the_server_then_kexecs_the_valid_one),
            kernel.KernelPath, image, "console=ttyS0 panic=-1 quiet -- --attempts=1 --retry-wait=1 --rounds=15", network);
        try
        {
            machine.WaitFor(ConsoleMarker.Boot("stage:network"), Stage);
            var tamperedLine = machine.WaitFor("reason=SignaturesRefused", Stage);
            var underLine = machine.WaitFor("1 found, 1 valid, 2 required", Stage);
            var otherLine = machine.WaitFor("rejection=NotIssuedByRoot", Stage);
            var expiredLine = machine.WaitFor("rejection=CertificateNotValidAtTime", Stage);
            provisioning.Start();
            var verified = machine.WaitFor(ConsoleMarker.Boot("verified"), Stage);
            var kexec = machine.WaitFor(ConsoleMarker.Boot("kexec"), Stage);
            var marker = machine.WaitFor("TABULA-MARKER", Stage);
            machine.WaitForExit(Stage);

            string[] lines = machine.Console.Split('\n');
            // 1: the valid package, 2 of 3, kexeced with its signed command line; the OS sees the verified digest.
            Assert.Contains($"url={server}", verified.Line);
            Assert.Contains($"ospkg_sha256={digest}", verified.Line);
            Assert.Contains("3 found, 2 valid, 2 required", verified.Line);
            Assert.Contains($"cmdline=\"{OsPackages.Cmdline}\"", kexec.Line);
            Assert.Contains($"TABULA-MARKER ospkg_sha256={digest} source=network", marker.Line);
            Assert.Contains($"cmdline=\"{OsPackages.Cmdline}\"", marker.Line);
            Assert.Single(lines, l => l.Contains("tabula-boot: kexec "));
            Assert.Contains(lines, l => l.Contains("tabula-boot: timeline") && l.Contains(" fetch=") && l.Contains(" verify=") && l.Contains(" kexec-load="));
            // The default on this BIOS-booted machine: stboot's own kexec_load layout, no purgatory.
            Assert.Contains(lines, l => l.Contains("tabula-boot: stage:kexec-load") && l.Contains("method=\"kexec_load kernel@0x1000000+"));
            // 2: tampered archive refused (every signature invalid over the served bytes), retried in a new round.
            Assert.Contains($"stage=verify reason=SignaturesRefused url={mirrorUrl}", tamperedLine.Line);
            Assert.Contains("3 found, 0 valid, 2 required", tamperedLine.Line);
            Assert.Contains("#0 SignatureInvalid, #1 SignatureInvalid, #2 SignatureInvalid", tamperedLine.Line);
            // 3: under the threshold, another root, expired leaves: each refused with its code.
            Assert.Contains("reason=SignaturesRefused", underLine.Line);
            Assert.True(tamperedLine.At < underLine.At && underLine.At < otherLine.At && otherLine.At < expiredLine.At && expiredLine.At < kexec.At);
            Assert.Contains(lines, l => l.Contains("FAILED") && l.Contains("#0 NotIssuedByRoot, #1 NotIssuedByRoot"));
            Assert.Contains(lines, l => l.Contains("FAILED") && l.Contains("#0 CertificateNotValidAtTime, #1 CertificateNotValidAtTime"));
            // 4: the dead first URL is reported and the next one used; the server down at first, then up: boots.
            Assert.Contains(lines, l => l.Contains($"FAILED") && l.Contains($"stage=fetch reason=ConnectionFailed url={dead}"));
            Assert.Contains(lines, l => l.Contains("FAILED") && l.Contains($"stage=fetch reason=ConnectionFailed url={server}") && l.Contains("round=1/15"));
            Assert.Contains(lines, l => l.Contains("FAILED") && l.Contains($"stage=fetch reason=HttpStatus url={mirrorUrl}") && l.Contains("HTTP 404"));
            Assert.Contains("static address=", lines.Single(l => l.Contains("tabula-boot: stage:network")));
            Assert.Equal(0, machine.ExitCode);
        }
        finally
        {
            Report(machine, image);
        }
    }

    /// <summary>Case 5 (DHCP): dnsmasq in the namespace; no interface listed, so the first NIC with link is used. The image
    /// is made with the modules "virtio_net" alone (the coldplug acceptance case: its PCI transport comes by itself). The
    /// package comes from the provisioning server over pinned HTTPS. (Static IPv4 is the boot above; static IPv6 and
    /// DHCP are also proven on a real kernel without QEMU in Tabula.Boot.Tests.)</summary>
    [GuestKernelFact(needsRoot: true, "qemu-system-x86_64", "ip", "clang", "dnsmasq")]
    public async Task Dhcp_boot_gets_a_lease_from_dnsmasq_fetches_from_the_provisioning_server_and_kexecs()
    {
        Prerequisites.Require(needsRoot: true, "qemu-system-x86_64", "ip", "clang", "dnsmasq");
        GuestKernel kernel = GuestKernel.Require();
        using var network = TapNetwork.Create();
        using var dnsmasq = Dnsmasq.Start(network);
        using var provisioning = ProvisioningProcess.Prepare(network, Trust("prov-trust", 2, "network"));
        var signers = new[] { SignedPackages.Leaf(root), SignedPackages.Leaf(root), SignedPackages.Leaf(root) };
        string digest = await provisioning.PublishAsync(SignedPackages.Descriptor(Os.Archive, "", signers[0], signers[1]), Os.Archive, "stable");
        provisioning.Start();

        string image = Os.StbootImage("stboot-dhcp", Trust("trust", 2, "network", provisioning.CaPem),
            $$"""{"network_mode": "dhcp", "ospkg_pointer": "{{provisioning.BaseUrl}}/channels/stable.json"}""", ["virtio_net"]);
        using var machine = Guest.Start(nameof(Dhcp_boot_gets_a_lease_from_dnsmasq_fetches_from_the_provisioning_server_and_kexecs),
            kernel.KernelPath, image, "console=ttyS0 panic=-1 quiet", network);
        try
        {
            var modules = machine.WaitFor(ConsoleMarker.Boot("note:modules"), Stage);
            var net = machine.WaitFor(ConsoleMarker.Boot("stage:network"), Stage);
            var marker = machine.WaitFor("TABULA-MARKER", Stage);
            machine.WaitForExit(Stage);

            // The image was made with --modules virtio_net alone, on a kernel whose virtio PCI transport is a module:
            // virtio_pci came in as virtio_net's transport, and coldplug loaded it for the PCI function, then
            // virtio_net for the virtio device that appeared behind it (before, this waited 30 s: NoInterface).
            Assert.Contains("matched=virtio_pci,virtio_net", modules.Line);
            Assert.Contains($"dhcp server={network.HostAddress}", net.Line);
            // dnsmasq leases .50-.60 of the tap's /24 (Harness/Dnsmasq.cs).
            string subnet = network.HostAddress.ToString()[..network.HostAddress.ToString().LastIndexOf('.')];
            Assert.Matches($@"address={System.Text.RegularExpressions.Regex.Escape(subnet)}\.(5\d|60)/24", net.Line);
            Assert.Contains($"gateway={network.HostAddress}", net.Line);
            Assert.Contains($"TABULA-MARKER ospkg_sha256={digest} source=network", marker.Line);
            // stboot's kexec_load layout handed the OS kernel a SETUP_RNG_SEED record, alone in the list on BIOS
            Assert.Contains(machine.Serial.Lines, l => l.Line.Contains("tabula-boot: stage:kexec-load") && l.Line.Contains("method=\"kexec_load kernel@") && l.Line.Contains(" rng_seed=32B\""));
            Assert.Contains(" setup_data=9 ", marker.Line);
            Assert.DoesNotContain("FAILED", machine.Console);
            Assert.Contains("DHCPACK", dnsmasq.Log);
        }
        finally
        {
            Report(machine, image);
            output.WriteLine(dnsmasq.Log);
        }
    }

    /// <summary>Case 6: the initramfs fetch method: the package is in the stboot image (/ospkg), no NIC at all.</summary>
    [GuestKernelFact(needsRoot: true, "qemu-system-x86_64", "clang")]
    public void Initramfs_fetch_method_boots_the_embedded_package_without_a_network_through_kexec_file_load()
    {
        Prerequisites.Require(needsRoot: true, "qemu-system-x86_64", "clang");
        GuestKernel kernel = GuestKernel.Require();
        var signers = new[] { SignedPackages.Leaf(root), SignedPackages.Leaf(root) };
        string descriptor = Path.Combine(work, "ospkg.json");
        File.WriteAllBytes(descriptor, SignedPackages.Descriptor(Os.Archive, "", signers));
        File.WriteAllBytes(Path.Combine(work, "ospkg.zip"), Os.Archive);

        string image = Os.StbootImage("stboot-initramfs", Trust("trust", 2, "initramfs"),
            """{"network_mode": "dhcp", "ospkg_pointer": "ospkg.json"}""", [], descriptor);
        using var machine = Guest.Start(nameof(Initramfs_fetch_method_boots_the_embedded_package_without_a_network_through_kexec_file_load),
            kernel.KernelPath, image, "console=ttyS0 panic=-1 quiet -- --kexec=file");
        try
        {
            var fetched = machine.WaitFor(ConsoleMarker.Boot("stage:fetch"), Stage);
            var marker = machine.WaitFor("TABULA-MARKER", Stage);
            machine.WaitForExit(Stage);

            Assert.Contains("url=/ospkg/ospkg.json", fetched.Line);
            Assert.Contains($"TABULA-MARKER ospkg_sha256={Os.Sha256Hex} source=initramfs", marker.Line);
            Assert.DoesNotContain("stage:network", machine.Console);
            // kexec_file_load, asked for on stboot's command line, still boots (EFI and lockdown machines use it).
            Assert.Contains("method=\"kexec_file_load (kexec_load: --kexec=file)\"", machine.Console);
            Assert.DoesNotContain("FAILED", machine.Console);
        }
        finally
        {
            Report(machine, image);
        }
    }
}

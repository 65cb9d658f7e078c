using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Tabula.Images.Relay;
using Tabula.Packaging;
using Tabula.Testing;

namespace Tabula.Images.Tests;

public sealed class RelayImageTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("tabula-relay-image-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    string PathOf(string name) => Path.Combine(dir, name);

    /// <summary>A fake agent and kernel, a private ECDSA CA (like `tabula fleet tls init`'s) and a module tree.</summary>
    RelayImageInputs Inputs(string fleetUrl = "https://192.0.2.10:8443")
    {
        if (!File.Exists(PathOf("tabula-relay")))
        {
            File.WriteAllBytes(PathOf("tabula-relay"), RandomNumberGenerator.GetBytes(8192));
            File.WriteAllBytes(PathOf("vmlinuz-6.1.0-test"), RandomNumberGenerator.GetBytes(16384));
            File.WriteAllText(PathOf("ca.pem"), CaPem("Tabula fleet CA", DateTimeOffset.UtcNow.AddYears(10)));
            FakeModules.Write(PathOf("modules"), "6.1.0-test", FakeModules.VirtioNetDep + "kernel/wireguard.ko: kernel/udp_tunnel.ko\nkernel/udp_tunnel.ko:\n");
        }
        return new RelayImageInputs(PathOf("tabula-relay"), "6.1.0-test", fleetUrl, PathOf("ca.pem"), ["wireguard", "virtio_net"])
        {
            Kernel = PathOf("vmlinuz-6.1.0-test"),
            ModulesRoot = PathOf("modules"),
        };
    }

    static string CaPem(string name, DateTimeOffset notAfter)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        using var certificate = request.CreateSelfSigned(notAfter.AddYears(-11), notAfter);
        return certificate.ExportCertificatePem() + "\n";
    }

    static byte[] Package(RelayImageInputs inputs)
    {
        using var output = new MemoryStream();
        RelayImage.Write(inputs, output);
        return output.ToArray();
    }

    [Fact]
    public void Same_inputs_give_the_same_bytes()
    {
        var inputs = Inputs();
        byte[] first = Package(inputs);
        Thread.Sleep(1100);                          // a different wall-clock second must not matter
        foreach (string file in new[] { inputs.Agent, inputs.KernelPath, inputs.FleetCaFile })
            File.SetLastWriteTimeUtc(file, DateTime.UtcNow);
        Assert.Equal(first, Package(inputs));
        Assert.NotEqual(first, Package(inputs with { FleetUrl = "https://192.0.2.11" }));
    }

    [Fact]
    public void Package_holds_the_kernel_the_cmdline_and_an_initramfs_with_agent_config_ca_devices_and_modules_in_load_order()
    {
        var inputs = Inputs();
        byte[] zip = Package(inputs);
        using var archive = OsPackageArchive.Open(new MemoryStream(zip));
        Assert.Equal(new Manifest("Tabula relay 6.1.0-test", "boot/vmlinuz-6.1.0-test", "boot/initramfs.cpio.gz",
            "console=ttyS0,115200 panic=-1 quiet init_on_free=1"), archive.Manifest);
        using var kernel = new MemoryStream();
        archive.ExtractKernel(kernel);
        Assert.Equal(File.ReadAllBytes(inputs.KernelPath), kernel.ToArray());
        using var initramfs = new MemoryStream();
        archive.ExtractInitramfs(initramfs);

        var entries = NewcReader.ReadGzip(initramfs.ToArray()).ToDictionary(e => e.Name);
        Assert.Equal(File.ReadAllBytes(inputs.Agent), entries["init"].Data);
        Assert.Equal(0x81EDu, entries["init"].Mode);                               // regular file 0755
        Assert.Equal((0x21B6u, 1u, 9u), (entries["dev/urandom"].Mode, entries["dev/urandom"].DeviceMajor, entries["dev/urandom"].DeviceMinor));
        Assert.Equal((5u, 1u), (entries["dev/console"].DeviceMajor, entries["dev/console"].DeviceMinor));
        foreach (string directory in new[] { "proc", "sys", "run", "etc", "var" })
            Assert.Equal(0x41EDu, entries[directory].Mode);
        Assert.Equal(0x43FFu, entries["tmp"].Mode);                                // sticky, world-writable
        Assert.Equal("{\"version\":1,\"fleet_url\":\"https://192.0.2.10:8443\"}\n",
            Encoding.UTF8.GetString(entries["etc/tabula/relay.json"].Data));
        Assert.Equal(Certificate.ParsePemBundle(File.ReadAllBytes(inputs.FleetCaFile)).Single().Der,
            Certificate.ParsePemBundle(entries["etc/tabula/fleet-ca.pem"].Data).Single().Der);
        // The index files the agent's coldplug reads: the carried modules only, in depmod's format.
        Assert.Equal("kernel/udp_tunnel.ko:\nkernel/wireguard.ko: kernel/udp_tunnel.ko\nkernel/failover.ko:\n" +
                     "kernel/net_failover.ko: kernel/failover.ko\nkernel/virtio_net.ko: kernel/net_failover.ko kernel/failover.ko\n",
                     Encoding.UTF8.GetString(entries["lib/modules/6.1.0-test/modules.dep"].Data));
        Assert.StartsWith("#", Encoding.UTF8.GetString(entries["lib/modules/6.1.0-test/modules.alias"].Data));
        Assert.Equal(File.ReadAllBytes(PathOf("modules/6.1.0-test/kernel/wireguard.ko")), entries["lib/modules/6.1.0-test/kernel/wireguard.ko"].Data);
        // Nothing else: no swap, no fstab, no second program.
        Assert.Equal(["dev", "dev/console", "dev/null", "dev/random", "dev/urandom", "etc", "etc/tabula", "etc/tabula/fleet-ca.pem",
            "etc/tabula/relay.json", "init", "lib", "lib/modules", "lib/modules/6.1.0-test", "lib/modules/6.1.0-test/kernel",
            "lib/modules/6.1.0-test/kernel/failover.ko", "lib/modules/6.1.0-test/kernel/net_failover.ko",
            "lib/modules/6.1.0-test/kernel/udp_tunnel.ko", "lib/modules/6.1.0-test/kernel/virtio_net.ko",
            "lib/modules/6.1.0-test/kernel/wireguard.ko", "lib/modules/6.1.0-test/modules.alias", "lib/modules/6.1.0-test/modules.dep",
            "proc", "run", "sys", "tmp", "var"], entries.Keys);
    }

    [Fact]
    public void The_default_command_line_zeroes_freed_memory()
    {
        using var archive = OsPackageArchive.Open(new MemoryStream(Package(Inputs())));
        Assert.Contains(RelayImage.InitOnFree, archive.Manifest.Cmdline.Split(' '));
        Assert.Equal("init_on_free=1", RelayImage.InitOnFree);
    }

    [Theory]
    [InlineData("console=ttyS0 init_on_free=1")]
    [InlineData("init_on_free=0 console=ttyS0 init_on_free=1 init_on_alloc=1")]
    [InlineData("console=ttyS0  init_on_free=1 -- init_on_free=0")]          // after "--": /init's, not the kernel's
    public void A_command_line_that_zeroes_freed_memory_is_kept_exactly(string cmdline)
    {
        using var archive = OsPackageArchive.Open(new MemoryStream(Package(Inputs() with { Cmdline = cmdline })));
        Assert.Equal(cmdline, archive.Manifest.Cmdline);
    }

    [Theory]
    [InlineData("console=ttyS0,115200 panic=-1 quiet")]
    [InlineData("console=ttyS0 init_on_free=1 init_on_free=0")]              // the kernel takes the last one
    [InlineData("console=ttyS0 init_on_free=on")]
    [InlineData("console=ttyS0 init_on_free=10")]
    [InlineData("console=ttyS0 -- init_on_free=1")]
    [InlineData("")]
    public void A_command_line_that_does_not_zero_freed_memory_is_refused(string cmdline)
    {
        using var output = new MemoryStream();
        var e = Assert.Throws<ImageException>(() => RelayImage.Write(Inputs() with { Cmdline = cmdline }, output));
        Assert.Equal(ImageError.InputInvalid, e.Reason);
        Assert.Contains("init_on_free=1", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, output.Length);
    }

    [Theory]
    [InlineData("https://192.0.2.10:8443/tabula")]
    [InlineData("https://fleet.example.net:8443/")]   // a relay on DHCP resolves its controller by name
    public void The_agent_reads_the_fleet_url_and_the_pinned_ca_the_image_wrote(string url)
    {
        var inputs = Inputs(url);
        byte[] zip = Package(inputs);
        using var archive = OsPackageArchive.Open(new MemoryStream(zip));
        using var initramfs = new MemoryStream();
        archive.ExtractInitramfs(initramfs);
        string root = PathOf("root");
        foreach (var entry in NewcReader.ReadGzip(initramfs.ToArray()).Where(e => e.Name.StartsWith("etc/tabula/", StringComparison.Ordinal)))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(root, entry.Name))!);
            File.WriteAllBytes(Path.Combine(root, entry.Name), entry.Data);
        }

        var (fleetUrls, fleetCa) = Tabula.Relay.Settings.RelaySettings.LoadPackageSettings(root);
        Assert.Equal(new Uri(url), Assert.Single(fleetUrls));
        Assert.Equal(Certificate.ParsePemBundle(File.ReadAllBytes(inputs.FleetCaFile)).Single().Der, Assert.Single(fleetCa).Der);
    }

    [Fact]
    public void Summary_reports_the_sizes_that_went_in()
    {
        var inputs = Inputs() with { Cmdline = "console=ttyS1 panic=10 init_on_free=1" };
        using var output = new MemoryStream();
        RelayImageSummary summary = RelayImage.Write(inputs, output);
        using var archive = OsPackageArchive.Open(new MemoryStream(output.ToArray()));
        using var initramfs = new MemoryStream();
        Assert.Equal(summary.InitramfsBytes, archive.ExtractInitramfs(initramfs));
        Assert.Equal(8192, summary.InitBytes);
        Assert.Equal(16384, summary.KernelBytes);
        Assert.True(summary.InitramfsUncompressedBytes > 8192);
        Assert.Equal("console=ttyS1 panic=10 init_on_free=1", summary.Manifest.Cmdline);
        Assert.Equal("Tabula fleet CA", Assert.Single(summary.FleetCa).CommonName);
        Assert.Equal(5, summary.ModuleLoadOrder.Count);
    }

    [Theory]
    [InlineData("http://fleet.example.net", "https://HOST")]
    [InlineData("fleet.example.net", "https://HOST")]
    [InlineData("https://", "https://HOST")]
    [InlineData("https://admin:secret@192.0.2.10", "user info")]
    [InlineData("https://192.0.2.10/?token=x", "query")]
    [InlineData("https://fleet_1.example.net", "IP address or a DNS name")]
    public void Fleet_url_that_is_not_a_plain_https_base_url_is_refused(string url, string why)
    {
        var error = Assert.Throws<ImageException>(() => RelayImage.BuildInitramfs(Inputs(url)));
        Assert.Equal(ImageError.InputInvalid, error.Reason);
        Assert.Contains(why, error.Message);
    }

    [Theory]
    [InlineData("not a certificate at all\n", "no PEM CERTIFICATE block")]
    [InlineData("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "DER")]
    [InlineData("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "malformed")]
    public void Fleet_ca_that_is_not_pem_certificates_is_refused(string pem, string why)
    {
        var inputs = Inputs();
        File.WriteAllText(inputs.FleetCaFile, pem);
        var error = Assert.Throws<ImageException>(() => RelayImage.BuildInitramfs(inputs));
        Assert.Equal(ImageError.InputInvalid, error.Reason);
        Assert.Contains(why, error.Message);
    }

    [Fact]
    public void Fleet_ca_with_a_private_key_in_it_is_refused_so_the_key_is_never_published()
    {
        var inputs = Inputs();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        File.AppendAllText(inputs.FleetCaFile, key.ExportPkcs8PrivateKeyPem() + "\n");
        var error = Assert.Throws<ImageException>(() => RelayImage.BuildInitramfs(inputs));
        Assert.Contains("PRIVATE KEY", error.Message);
    }

    [Fact]
    public void Fleet_ca_that_expired_or_is_too_large_is_refused()
    {
        var inputs = Inputs();
        File.WriteAllText(inputs.FleetCaFile, CaPem("old CA", DateTimeOffset.UtcNow.AddDays(-1)));
        Assert.Contains("not now", Assert.Throws<ImageException>(() => RelayImage.BuildInitramfs(inputs)).Message);

        File.WriteAllText(inputs.FleetCaFile, CaPem("fine", DateTimeOffset.UtcNow.AddYears(1)) + new string('#', Packaging.Limits.MaxPemBytes));
        Assert.Equal(ImageError.InputInvalid, Assert.Throws<ImageException>(() => RelayImage.BuildInitramfs(inputs)).Reason);
    }

    [Fact]
    public void Missing_agent_kernel_or_module_is_refused()
    {
        var inputs = Inputs();
        Assert.Contains("/init binary", Assert.Throws<ImageException>(() => Package(inputs with { Agent = PathOf("nope") })).Message);
        Assert.Contains("kernel", Assert.Throws<ImageException>(() => Package(inputs with { Kernel = PathOf("nope") })).Message);
        Assert.Equal(ImageError.ModuleNotFound,
            Assert.Throws<ImageException>(() => Package(inputs with { Modules = ["e1000e"] })).Reason);
        Assert.Equal(ImageError.InputInvalid,
            Assert.Throws<ImageException>(() => Package(inputs with { Cmdline = "init_on_free=1 " + new string('x', Packaging.Limits.MaxCmdlineBytes) })).Reason);
    }

    [GuestKernelFact]
    public void Debian_kernel_default_modules_resolve_to_wireguard_and_virtio_with_dependencies_first()
    {
        GuestKernel kernel = GuestKernel.Require();
        var inputs = Inputs() with { KernelRelease = kernel.Release, Kernel = null, ModulesRoot = "/lib/modules", Modules = RelayImageInputs.DefaultModules };
        using var output = new MemoryStream();
        RelayImageSummary summary = RelayImage.Write(inputs, output);
        Assert.Equal($"boot/vmlinuz-{kernel.Release}", summary.Manifest.KernelPath);
        Assert.Equal(new FileInfo(kernel.KernelPath).Length, summary.KernelBytes);
        string[] names = [.. summary.ModuleLoadOrder.Select(Path.GetFileName)!];
        // virtio_pci is not asked for: it comes in as virtio_net's transport (ModuleTree.Transports).
        foreach (string module in new[] { "wireguard.ko", "virtio_net.ko", "virtio_pci.ko", "udp_tunnel.ko", "virtio.ko", "failover.ko" })
            Assert.Contains(module, names);
        // The egress firewall's modules and what they need (the kernel cannot load them on demand: no modprobe).
        foreach (string module in new[] { "crc32c_generic.ko", "libcrc32c.ko", "nf_tables.ko", "nft_ct.ko", "nft_nat.ko", "nft_masq.ko",
                     "nft_chain_nat.ko", "nft_reject_inet.ko", "nf_conntrack.ko", "nf_nat.ko", "nf_conntrack_netlink.ko" })
            Assert.Contains(module, names);
        Assert.True(Array.IndexOf(names, "nf_tables.ko") < Array.IndexOf(names, "nft_ct.ko"));
        Assert.True(Array.IndexOf(names, "udp_tunnel.ko") < Array.IndexOf(names, "wireguard.ko"));
        Assert.True(Array.IndexOf(names, "virtio.ko") < Array.IndexOf(names, "virtio_pci.ko"));
        Assert.Equal(names.Length, names.Distinct().Count());
    }
}

using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Tabula.Images.Stboot;
using Tabula.Testing.Packages;

namespace Tabula.Images.Tests;

public sealed class StbootImageTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("tabula-stboot-image-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    StbootImageInputs Inputs()
    {
        string init = Path.Combine(dir, "tabula-boot");
        if (!File.Exists(init))
        {
            File.WriteAllBytes(init, RandomNumberGenerator.GetBytes(4096));
            SignedPackages.TrustPolicy(Path.Combine(dir, "trust"), 2, "network", [SignedPackages.Root()], tlsRootsPem: SignedPackages.Root().CertificatePem);
            File.WriteAllText(Path.Combine(dir, "host.json"), """{"network_mode": "dhcp", "ospkg_pointer": "https://10.0.0.1/os.json"}""");
            FakeModules.Write(Path.Combine(dir, "modules"), "6.1.0-test", FakeModules.VirtioNetDep);
        }
        return new StbootImageInputs(init, Path.Combine(dir, "trust"), Path.Combine(dir, "host.json"), "6.1.0-test", ["virtio_net"])
        {
            ModulesRoot = Path.Combine(dir, "modules"),
        };
    }

    static byte[] Image(StbootImageInputs inputs)
    {
        using var output = new MemoryStream();
        StbootImage.Write(inputs, output);
        return output.ToArray();
    }

    /// <summary>stboot reads STHostConfig (without a host configuration file) and SecureBoot from efivarfs, which Debian builds as a module.</summary>
    [Fact]
    public void The_efivarfs_module_goes_in_when_the_tree_has_it()
    {
        FakeModules.Write(Path.Combine(dir, "efi-modules"), "6.1.0-efi", FakeModules.VirtioNetDep + "kernel/fs/efivarfs/efivarfs.ko:\n");
        var inputs = Inputs() with { ModulesRoot = Path.Combine(dir, "efi-modules"), KernelRelease = "6.1.0-efi" };
        Assert.Contains("/lib/modules/6.1.0-efi/kernel/fs/efivarfs/efivarfs.ko", StbootImage.Build(inputs).Summary.ModuleLoadOrder);
        var (archive, fromVariable) = StbootImage.Build(inputs with { HostConfigFile = null, Modules = [] });
        Assert.Equal(["/lib/modules/6.1.0-efi/kernel/fs/efivarfs/efivarfs.ko"], fromVariable.ModuleLoadOrder);
        Assert.DoesNotContain(archive.Entries, e => e.Path == "etc/host_configuration.json");
        // A tree without the module (efivarfs built in): nothing to add, no error.
        Assert.DoesNotContain(StbootImage.Build(Inputs() with { HostConfigFile = null }).Summary.ModuleLoadOrder, m => m.Contains("efivarfs", StringComparison.Ordinal));
    }

    [Fact]
    public void Same_inputs_give_the_same_bytes()
    {
        var inputs = Inputs();
        byte[] first = Image(inputs);
        Thread.Sleep(1100);                          // a different wall-clock second must not matter
        File.SetLastWriteTimeUtc(inputs.Init, DateTime.UtcNow);
        Assert.Equal(first, Image(inputs));
    }

    [Fact]
    public void Image_holds_init_trust_policy_host_config_devices_and_the_module_closure_in_load_order()
    {
        var (_, summary) = StbootImage.Build(Inputs());
        Assert.Equal(4096, summary.InitBytes);
        Assert.Equal(["/lib/modules/6.1.0-test/kernel/failover.ko", "/lib/modules/6.1.0-test/kernel/net_failover.ko",
            "/lib/modules/6.1.0-test/kernel/virtio_net.ko"], summary.ModuleLoadOrder);
        foreach (string path in new[] { "init", "dev/console", "dev/urandom", "etc/trust_policy/trust_policy.json",
                     "etc/trust_policy/ospkg_signing_root.pem", "etc/trust_policy/tls_roots.pem", "etc/host_configuration.json",
                     "lib/modules/6.1.0-test/modules.dep", "lib/modules/6.1.0-test/modules.alias", "proc", "sys", "run" })
            Assert.Contains(path, summary.Paths);
        byte[] gz = Image(Inputs());
        using var gunzip = new GZipStream(new MemoryStream(gz), CompressionMode.Decompress);
        using var cpio = new MemoryStream();
        gunzip.CopyTo(cpio);
        Assert.StartsWith("070701", Encoding.ASCII.GetString(cpio.ToArray(), 0, 6));
    }

    [Fact]
    public void Fresh_trust_policy_goes_into_the_image_with_its_ticket_root()
    {
        var inputs = Inputs();
        byte[] ticketKey = Tabula.Packaging.Crypto.Ed25519.PublicKeyOf(Tabula.Packaging.Crypto.Ed25519.NewPrivateKey());
        var folder = Tabula.Packaging.TrustPolicyFolder.Load(inputs.TrustPolicyDirectory);
        var freshness = new Tabula.Packaging.FreshnessPolicy(Tabula.Packaging.FreshnessMode.Required, 2, "relay", new Uri("https://10.0.0.1:9443/boot/v1/ticket"));
        string fresh = Path.Combine(dir, "fresh-trust");
        (folder with { Policy = folder.Policy with { Freshness = freshness }, TicketRoot = ticketKey }).Write(fresh);

        var (_, summary) = StbootImage.Build(inputs with { TrustPolicyDirectory = fresh });
        Assert.Contains("etc/trust_policy/ticket_root.pem", summary.Paths);
        // The image carries the folder's files byte for byte: the policy with its freshness object, and the key.
        using var gunzip = new GZipStream(new MemoryStream(Image(inputs with { TrustPolicyDirectory = fresh })), CompressionMode.Decompress);
        using var cpio = new MemoryStream();
        gunzip.CopyTo(cpio);
        byte[] image = cpio.ToArray();
        foreach (string file in new[] { "trust_policy.json", "ticket_root.pem" })
            Assert.True(image.AsSpan().IndexOf(File.ReadAllBytes(Path.Combine(fresh, file))) >= 0, file + " is not in the image");
        Assert.Equal(ticketKey, Tabula.Packaging.TrustPolicyFolder.Load(fresh).TicketRoot);
        Assert.Contains("tabula_freshness", File.ReadAllText(Path.Combine(fresh, "trust_policy.json")), StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_host_configuration_is_refused_before_any_image_is_written()
    {
        var inputs = Inputs();
        File.WriteAllText(inputs.HostConfigFile!, """{"network_mode": "static", "ospkg_pointer": "https://10.0.0.1/os.json"}""");
        var error = Assert.Throws<ImageException>(() => StbootImage.Build(inputs));
        Assert.Equal(ImageError.InputInvalid, error.Reason);
        Assert.Contains("host_ip", error.Message);
    }

    [Fact]
    public void Network_fetch_with_a_file_name_pointer_is_refused()
    {
        var inputs = Inputs();
        File.WriteAllText(inputs.HostConfigFile!, """{"network_mode": "dhcp", "ospkg_pointer": "ospkg.json"}""");
        Assert.Equal(ImageError.InputInvalid, Assert.Throws<ImageException>(() => StbootImage.Build(inputs)).Reason);
    }
}

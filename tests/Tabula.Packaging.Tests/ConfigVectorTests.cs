namespace Tabula.Packaging.Tests;

public sealed class HostConfigTests
{
    [Theory]
    [InlineData("stmgr-v0.6.6/hostconfigs/compat-1.txt")]
    [InlineData("stmgr-v0.6.6/hostconfigs/compat-2.txt")]
    [InlineData("stmgr-v0.6.6/hostconfigs/compat-3.txt")]
    [InlineData("stboot-v0.2.x/opts-testdata/host_good_all_set.json")]
    [InlineData("stboot-legacy-2021/host_configuration.json")]
    [InlineData("system-transparency-legacy/example_host_configuration.json")]
    public void Upstream_host_configs_are_valid(string file)
    {
        var config = HostConfig.Parse(Vectors.Read("st-upstream/" + file));
        Assert.NotEmpty(config.OsPackagePointers);
    }

    [Fact]
    public void Bad_unset_host_config_is_refused_naming_network_mode()
    {
        var e = Assert.Throws<PackageFormatException>(() => HostConfig.Parse(Vectors.Read("st-upstream/stboot-v0.2.x/opts-testdata/host_bad_unset.json")));
        Assert.Equal(FormatError.InvalidField, e.Error);
        Assert.Contains("\"network_mode\"", e.Message);
    }

    [Fact]
    public void Legacy_mullvad_config_maps_dns_mac_urls_and_bond()
    {
        var config = HostConfig.Parse(Vectors.Read("st-upstream/stmgr-v0.6.6/hostconfigs/compat-1.txt"));
        Assert.Equal(NetworkMode.Static, config.NetworkMode);
        Assert.Equal("45.129.56.67", config.HostAddress!.ToString());
        Assert.Equal(26, config.PrefixLength);
        Assert.Equal("45.129.56.65", config.Gateway!.ToString());
        Assert.Equal("9.9.9.9", Assert.Single(config.Dns).ToString());
        Assert.Equal("https://USERNAME:PASSWORD@HOSTNAME/os-stable.json", Assert.Single(config.OsPackagePointers));
        Assert.Equal("ac:1f:6b:ac:2f:f2", config.NetworkInterfaces[0].MacAddress);
        Assert.Equal(["eth2", "eth3"], config.NetworkInterfaces.Skip(1).Select(n => n.Name!));
        Assert.Equal(("802.3ad", "bond0"), (config.BondingMode, config.BondName));
        Assert.Contains("provisioning_urls", config.LegacyFields);
    }

    [Fact]
    public void Current_schema_example_parses_pointer_list_and_interfaces()
    {
        var config = HostConfig.Parse("""
            {"network_mode":"static","host_ip":"192.0.2.10/24","gateway":"192.0.2.1","dns":["9.9.9.9","149.112.112.112"],
             "network_interfaces":[{"interface_name":"eth0","mac_address":"AA:bb:cc:dd:ee:ff"}],
             "ospkg_pointer":"https://a.example/os.json,https://b.example/os.json",
             "identity":null,"authentication":null,"bonding_mode":null,"bond_name":null,"description":"stprov"}
            """u8);
        Assert.Equal(2, config.OsPackagePointers.Count);
        Assert.Equal("aa:bb:cc:dd:ee:ff", Assert.Single(config.NetworkInterfaces).MacAddress);
        Assert.Empty(config.LegacyFields);
    }

    [Theory]
    [InlineData("""{"network_mode":"dhcp"}""", "ospkg_pointer")]
    [InlineData("""{"network_mode":"wifi","ospkg_pointer":"x"}""", "network_mode")]
    [InlineData("""{"network_mode":"static","ospkg_pointer":"x","gateway":"10.0.0.1"}""", "host_ip")]
    [InlineData("""{"network_mode":"static","ospkg_pointer":"x","host_ip":"10.0.0.2/24"}""", "gateway")]
    [InlineData("""{"network_mode":"static","ospkg_pointer":"x","host_ip":"10.0.0.2","gateway":"10.0.0.1"}""", "host_ip")]
    [InlineData("""{"network_mode":"dhcp","ospkg_pointer":"x","bonding_mode":"802.3ad"}""", "bond_name")]
    [InlineData("""{"network_mode":"dhcp","ospkg_pointer":"x","bonding_mode":"fast","bond_name":"b"}""", "bonding_mode")]
    [InlineData("""{"network_mode":"dhcp","ospkg_pointer":"x","dns":["not-an-ip"]}""", "dns")]
    [InlineData("""{"network_mode":"dhcp","ospkg_pointer":42}""", "ospkg_pointer")]
    [InlineData("""{"network_mode":"dhcp","ospkg_pointer":"x","network_interfaces":[{"mac_address":"nope"}]}""", "mac_address")]
    [InlineData("""{"network_mode":"dhcp","ospkg_pointer":"x","network_interfaces":{}}""", "network_interfaces")]
    public void Invalid_host_configs_name_the_field(string json, string field)
    {
        var e = Assert.Throws<PackageFormatException>(() => HostConfig.Parse(System.Text.Encoding.UTF8.GetBytes(json)));
        Assert.Contains($"\"{field}", e.Message);
    }

    // afl found it (eda26bc): a legacy config whose only provisioning URL is "" was accepted with an empty pointer.
    [Theory]
    [InlineData("""{"network_mode":"dhcp","provisioning_urls":[""]}""")]
    [InlineData("""{"network_mode":"dhcp","provisioning_urls":["  ",""]}""")]
    [InlineData("""{"version":1,"network_mode":"dhcp","host_ip":null,"gateway":null,"dns":null,"network_interface":null,"provisioning_urls":[""],"identity":null,"authentication":null,"timestamp":null,"networ__interfaces":[],"bonding_mode":"","bond_name":""}""")]
    public void Legacy_provisioning_urls_that_are_all_empty_are_no_package_pointer(string json)
    {
        var e = Assert.Throws<PackageFormatException>(() => HostConfig.Parse(System.Text.Encoding.UTF8.GetBytes(json)));
        Assert.Contains("\"ospkg_pointer", e.Message);
    }

    [Fact]
    public void Legacy_provisioning_urls_are_trimmed_and_empty_entries_dropped()
    {
        var config = HostConfig.Parse("""{"network_mode":"dhcp","provisioning_urls":["", " https://a.example/os.json "]}"""u8);
        Assert.Equal(["https://a.example/os.json"], config.OsPackagePointers);
    }
}

public sealed class TrustPolicyTests
{
    [Fact]
    public void Good_upstream_trust_policy_parses()
    {
        var policy = TrustPolicy.Parse(Vectors.Read("st-upstream/stboot-v0.2.x/opts-testdata/trust_policy_good_all_set.json"));
        Assert.Equal(new TrustPolicy(1, FetchMethod.Network), policy);
    }

    [Fact]
    public void Bad_upstream_trust_policy_is_refused_naming_the_threshold()
    {
        var e = Assert.Throws<PackageFormatException>(() => TrustPolicy.Parse(Vectors.Read("st-upstream/stboot-v0.2.x/opts-testdata/trust_policy_bad_unset.json")));
        Assert.Contains("ospkg_signature_threshold", e.Message);
    }

    [Fact]
    public void Legacy_security_configuration_maps_to_a_policy()
    {
        var policy = TrustPolicy.Parse(Vectors.Read("st-upstream/stboot-legacy-2021/security_configuration.json"));
        Assert.Equal((3, FetchMethod.Network, true), (policy.SignatureThreshold, policy.FetchMethod, policy.IsLegacy));
    }

    [Theory]
    [InlineData("""{"ospkg_signature_threshold":0,"ospkg_fetch_method":"network"}""", "ospkg_signature_threshold")]
    [InlineData("""{"ospkg_signature_threshold":"2","ospkg_fetch_method":"network"}""", "ospkg_signature_threshold")]
    [InlineData("""{"ospkg_signature_threshold":2.5,"ospkg_fetch_method":"network"}""", "ospkg_signature_threshold")]
    [InlineData("""{"ospkg_signature_threshold":2,"ospkg_fetch_method":"usb"}""", "ospkg_fetch_method")]
    [InlineData("""[1,2]""", "JSON object")]
    public void Invalid_trust_policies_name_the_problem(string json, string expected)
    {
        var e = Assert.Throws<PackageFormatException>(() => TrustPolicy.Parse(System.Text.Encoding.UTF8.GetBytes(json)));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Trust_policy_folder_loads_roots_and_sigsum_policy()
    {
        string dir = Directory.CreateTempSubdirectory("tabula-tp-").FullName;
        try
        {
            File.Copy(Vectors.PathOf("st-upstream/stboot-v0.2.x/opts-testdata/trust_policy_good_all_set.json"), Path.Combine(dir, "trust_policy.json"));
            File.Copy(Vectors.PathOf("st-upstream/stboot-v0.2.x/opts-testdata/certs.pem"), Path.Combine(dir, "ospkg_signing_root.pem"));
            File.Copy(Vectors.PathOf("st-upstream/stimages/isrgrootx1.pem"), Path.Combine(dir, "tls_roots.pem"));
            File.Copy(Vectors.PathOf("st-upstream/sigsum-rs/sigsum-test-2025-3.builtin-policy"), Path.Combine(dir, "ospkg_trust_policy"));
            var folder = TrustPolicyFolder.Load(dir);
            Assert.Equal(2, folder.SigningRoots.Count);
            Assert.Single(folder.TlsRoots!);
            Assert.NotNull(folder.ToVerificationPolicy().Sigsum);
        }
        finally { Directory.Delete(dir, true); }
    }
}

public sealed class CertificateVectorTests
{
    [Fact]
    public void Upstream_rsa_root_parses_with_its_validity_and_ca_flag()
    {
        var root = Assert.Single(Certificate.ParsePemBundle(Vectors.Read("st-upstream/stboot-v0.2.x/opts-testdata/cert.pem")));
        Assert.True(root.IsCertificateAuthority);
        Assert.Equal(2022, root.NotBefore.Year);
        Assert.Equal(2049, root.NotAfter.Year);
        Assert.Equal("1.2.840.113549.1.1.1", root.PublicKeyAlgorithm);
    }

    [Fact]
    public void Upstream_bundle_of_two_roots_parses_as_a_root_set()
    {
        Assert.Equal(2, Certificate.ParsePemBundle(Vectors.Read("st-upstream/stboot-v0.2.x/opts-testdata/certs.pem")).Count);
    }

    [Fact]
    public void Isrg_root_x1_parses()
    {
        var root = Assert.Single(Certificate.ParsePemBundle(Vectors.Read("st-upstream/stimages/isrgrootx1.pem")));
        Assert.Equal(2035, root.NotAfter.Year);
    }

    [Theory]
    [InlineData("cert_bad_cert.pem", FormatError.InvalidDer)]
    [InlineData("cert_bad_pem.pem", FormatError.InvalidPem)]
    public void Bad_upstream_certificates_are_refused(string file, FormatError expected)
    {
        var e = Assert.Throws<PackageFormatException>(() => Certificate.ParsePemBundle(Vectors.Read("st-upstream/stboot-v0.2.x/opts-testdata/" + file)));
        Assert.Equal(expected, e.Error);
    }

    [Fact]
    public void Our_root_has_stmgrs_shape()
    {
        var root = TestPki.Root().Certificate;
        Assert.True(root.IsCertificateAuthority);
        Assert.Equal(X509KeyUsage.DigitalSignature | X509KeyUsage.KeyCertSign, root.KeyUsage);
        Assert.Null(root.ExtendedKeyUsages);
        Assert.Equal(Convert.ToBase64String(System.Security.Cryptography.SHA256.HashData(root.PublicKey)), root.CommonName);
    }

    [Fact]
    public void Our_leaf_has_stmgrs_shape()
    {
        var leaf = TestPki.Leaf(TestPki.Root()).Certificate;
        Assert.False(leaf.IsCertificateAuthority);
        Assert.Equal(X509KeyUsage.DigitalSignature, leaf.KeyUsage);
        Assert.Null(leaf.ExtendedKeyUsages);
        Assert.True(leaf.HasEd25519Key);
    }
}

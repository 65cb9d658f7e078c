using System.Text;
using Tabula.Testing;
using Tabula.Testing.Packages;

namespace Tabula.Packaging.Tests;

/// <summary>The formats stboot's measured boot adds (issue 19): the trust policy's mode, the host configuration as
/// measured (no secrets), the hand-over's measured_boot object and the event log beside it.</summary>
public sealed class MeasuredBootFormatTests
{
    [Theory, InlineData("required", MeasuredBootMode.Required), InlineData("optional", MeasuredBootMode.Optional)]
    public void The_trust_policy_reads_and_writes_tabula_measured_boot(string text, MeasuredBootMode mode)
    {
        var policy = TrustPolicy.Parse(Encoding.UTF8.GetBytes($$"""{"ospkg_signature_threshold":2,"ospkg_fetch_method":"network","tabula_measured_boot":"{{text}}"}"""));
        Assert.Equal(mode, policy.MeasuredBoot);
        byte[] written = policy.ToJson();
        Assert.Contains($"\"tabula_measured_boot\": \"{text}\"", Encoding.UTF8.GetString(written));
        Assert.Equal(mode, TrustPolicy.Parse(written).MeasuredBoot);
        // Without the key: null (best effort, as upstream), and the writer stays byte-identical to stmgr's.
        var plain = new TrustPolicy(2, FetchMethod.Network);
        Assert.Null(TrustPolicy.Parse(plain.ToJson()).MeasuredBoot);
        Assert.DoesNotContain("measured", Encoding.UTF8.GetString(plain.ToJson()));
    }

    [Theory, InlineData("\"always\""), InlineData("true"), InlineData("\"Required\"")]
    public void A_measured_boot_mode_other_than_required_or_optional_is_refused(string value)
    {
        var e = Assert.Throws<PackageFormatException>(() => TrustPolicy.Parse(Encoding.UTF8.GetBytes(
            $$"""{"ospkg_signature_threshold":1,"ospkg_fetch_method":"network","tabula_measured_boot":{{value}}}""")));
        Assert.Equal(FormatError.InvalidField, e.Error);
        Assert.Contains("tabula_measured_boot", e.Message);
    }

    [Fact]
    public void The_measured_host_configuration_has_no_identity_key_token_password_or_url_credentials()
    {
        byte[] host = """
            {"network_mode":"static","host_ip":"10.0.2.15/24","gateway":"10.0.2.2","dns":["9.9.9.9"],
             "ospkg_pointer":"https://user:s3cret@10.0.2.2/os.json,https://10.0.2.3/os.json",
             "provisioning_urls":["https://$ID:$AUTH@10.0.2.2/os.json"],"identity":"machine-7","authentication":"hunter2",
             "tabula_relay":{"identity_key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","enrollment_token":"tet_secret"}}
            """u8.ToArray();
        string measured = Encoding.UTF8.GetString(HostConfigMeasured.Of(host));
        foreach (string secret in (string[])["s3cret", "user:", "hunter2", "tet_secret", "AAECAwQF", "tabula_relay", "authentication", "$AUTH"])
            Assert.DoesNotContain(secret, measured);
        Assert.StartsWith("""{"network_mode":"static","host_ip":"10.0.2.15/24","gateway":"10.0.2.2","dns":["9.9.9.9"],""", measured);
        Assert.Contains("\"identity\":\"machine-7\"", measured);
        Assert.Contains("https://10.0.2.3/os.json", measured);
        // Deterministic: the same configuration, indented otherwise, measures the same.
        Assert.Equal(measured, Encoding.UTF8.GetString(HostConfigMeasured.Of(Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(host).Replace("\n", "\n   ")))));
    }

    [Fact]
    public void The_handover_names_the_event_log_by_digest_and_carries_it_beside_the_json()
    {
        byte[] log = [1, 2, 3, 4, 5];
        var record = new HandoverRecord(Sha256Digest.Of("archive"u8), FetchMethod.Network, "https://10.0.2.2/os.json", "/etc/host_configuration.json",
            """{"network_mode":"dhcp"}"""u8.ToArray()) { Measurement = HandoverMeasurement.Of(true, null, log) };
        var read = HandoverRecord.Parse(record.ToJson());
        Assert.Equal(new HandoverMeasurement(true, null, Sha256Digest.Of(log)), read.Measurement);
        Assert.True(read.Measurement!.Matches(log));
        Assert.False(read.Measurement.Matches([1, 2, 3, 4, 6]));
        Assert.Contains($"\"event_log_sha256\": \"{Sha256Digest.Of(log).Hex}\"", Encoding.UTF8.GetString(record.ToJson()));

        var entries = NewcReader.Read(record.ToArchive());
        Assert.Equal(["etc", InitramfsLayout.TabulaDirectory, InitramfsLayout.EventLog, InitramfsLayout.Handover], entries.Select(e => e.Name));
        Assert.Equal(log, entries.Single(e => e.Name == InitramfsLayout.EventLog).Data);
        Assert.Equal(0x81a4u, entries.Single(e => e.Name == InitramfsLayout.EventLog).Mode);

        // No TPM under an optional policy: said so, no log file.
        var none = record with { Measurement = HandoverMeasurement.Of(false, "no TPM (/dev/tpmrm0, /dev/tpm0)", null) };
        var readNone = HandoverRecord.Parse(none.ToJson()).Measurement!;
        Assert.Equal((false, "no TPM (/dev/tpmrm0, /dev/tpm0)", (Sha256Digest?)null), (readNone.Measured, readNone.Detail, readNone.EventLogSha256));
        Assert.DoesNotContain(InitramfsLayout.EventLog, NewcReader.Read(none.ToArchive()).Select(e => e.Name));
        Assert.Null(HandoverRecord.Parse((record with { Measurement = null }).ToJson()).Measurement);
    }

    [Theory]
    [InlineData("""{"measured":"yes"}""", "measured")]
    [InlineData("""{"measured":true,"event_log_sha256":"abc"}""", "event_log_sha256")]
    [InlineData("[]", "measured_boot")]
    public void A_bad_measured_boot_object_is_refused_naming_the_field(string value, string field)
    {
        string json = $$"""{"version":1,"ospkg_sha256":"{{Sha256Digest.Of("a"u8).Hex}}","ospkg_source":"initramfs","host_config_source":"/x","host_config":{},"measured_boot":{{value}}}""";
        var e = Assert.Throws<PackageFormatException>(() => HandoverRecord.Parse(Encoding.UTF8.GetBytes(json)));
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void The_measured_platform_reads_back_and_truncated_oversized_or_malformed_data_is_refused()
    {
        var platform = new HandoverPlatform(PlatformFirmware.Uefi, true, KernelLockdown.Integrity);
        byte[] measured = platform.ToMeasuredJson();
        Assert.Equal(platform, HandoverPlatform.ParseMeasured(measured));
        for (int n = 0; n < measured.Length; n++)
            Assert.Throws<PackageFormatException>(() => HandoverPlatform.ParseMeasured(measured.AsSpan(0, n)));
        byte[] oversized = Encoding.UTF8.GetBytes($$"""{"firmware":"uefi","secure_boot":true,"lockdown":"integrity","pad":"{{new string('a', HandoverPlatform.MaxMeasuredBytes)}}"}""");
        Assert.Equal(FormatError.TooLarge, Assert.Throws<PackageFormatException>(() => HandoverPlatform.ParseMeasured(oversized)).Error);
        var bios = Assert.Throws<PackageFormatException>(() => HandoverPlatform.ParseMeasured("""{"firmware":"bios","secure_boot":true,"lockdown":null}"""u8));
        Assert.Contains("PlatformSecurity event", bios.Message);
        Assert.Contains("secure_boot", bios.Message);
        Assert.Contains("firmware", Assert.Throws<PackageFormatException>(() => HandoverPlatform.ParseMeasured("""{"firmware":"arm"}"""u8)).Message);
    }

    [Fact]
    public void Measured_roots_read_as_concatenated_der_and_a_cut_or_overlong_concatenation_is_refused()
    {
        var a = SignedPackages.Root();
        var b = SignedPackages.Root();
        byte[] one = a.Certificate.Der, two = b.Certificate.Der;
        Assert.Empty(Certificate.ParseDerConcatenation([]));
        var both = Certificate.ParseDerConcatenation([.. one, .. two]);
        Assert.Equal([one, two], both.Select(c => c.Der));
        Assert.Equal(FormatError.InvalidDer, Assert.Throws<PackageFormatException>(() => Certificate.ParseDerConcatenation([.. one, .. two[..^1]])).Error);
        Assert.Equal(FormatError.InvalidDer, Assert.Throws<PackageFormatException>(() => Certificate.ParseDerConcatenation([.. one, 0x30])).Error);
        byte[] many = [.. Enumerable.Repeat(one, Limits.MaxPemBlocks + 1).SelectMany(c => c)];
        Assert.Equal(FormatError.TooLarge, Assert.Throws<PackageFormatException>(() => Certificate.ParseDerConcatenation(many)).Error);
    }
}

using System.Text;
using System.Text.Json.Nodes;

namespace Tabula.Cli.Tests;

/// <summary>`tabula ospkg sign` and `tabula ospkg verify`: exit codes 0 accepted, 1 rejected, 2 unusable input.</summary>
public sealed class OsPkgSignVerifyTests(SignerKeys keys) : IClassFixture<SignerKeys>, IDisposable
{
    private readonly Scratch scratch = new();

    public void Dispose() => scratch.Dispose();

    private string[] Roots(int threshold) => ["--roots", keys.RootCert, "--threshold", threshold.ToString()];

    [Fact]
    public void Sign_refuses_a_key_that_already_signed()
    {
        var package = keys.CreateSigned(scratch, "signer1");
        byte[] before = File.ReadAllBytes(package.Descriptor);
        var refused = Tabula.Run("ospkg", "sign", "--key", keys.Key("signer1"), "--cert", keys.Cert("signer1"), package.Descriptor);
        Assert.True(refused.ExitCode == 2, refused.ToString());
        Assert.Contains("already signed", refused.Stderr);
        Assert.Equal(before, File.ReadAllBytes(package.Descriptor));
    }

    [Fact]
    public void Verify_accepts_two_valid_of_three_signatures_at_threshold_two()
    {
        var package = keys.CreateSigned(scratch, "signer1", "stranger", "signer2");
        var (output, json) = package.VerifyJson(Roots(2));
        Assert.True(output.ExitCode == 0, output.ToString());
        Assert.True(json["accepted"]!.GetValue<bool>());
        Assert.Equal(3, json["found"]!.GetValue<int>());
        Assert.Equal(2, json["valid"]!.GetValue<int>());
        Assert.Equal(2, json["required"]!.GetValue<int>());
        Assert.Equal([true, false, true], json["signatures"]!.AsArray().Select(s => s!["valid"]!.GetValue<bool>()));
    }

    [Fact]
    public void Verify_json_prints_exactly_one_object_with_the_documented_keys()
    {
        var package = keys.CreateSigned(scratch, "signer1", "stranger");
        var (output, json) = package.VerifyJson(Roots(1));
        Assert.True(output.ExitCode == 0, output.ToString());
        Assert.Equal("", output.Stderr);
        Assert.Equal(System.Text.Json.JsonValueKind.True, json["accepted"]!.GetValueKind());
        foreach (var key in new[] { "found", "valid", "required" })
            Assert.Equal(System.Text.Json.JsonValueKind.Number, json[key]!.GetValueKind());
        var signatures = json["signatures"]!.AsArray();
        Assert.Equal(2, signatures.Count);
        for (int i = 0; i < signatures.Count; i++)
        {
            Assert.Equal(i, signatures[i]!["index"]!.GetValue<int>());
            Assert.Equal(System.Text.Json.JsonValueKind.String, signatures[i]!["reason"]!.GetValueKind());
        }
        Assert.True(signatures[0]!["valid"]!.GetValue<bool>());
        Assert.False(signatures[1]!["valid"]!.GetValue<bool>());
        Assert.Contains("not a trusted root", signatures[1]!["reason"]!.GetValue<string>());
    }

    [Fact]
    public void Verify_rejects_threshold_three_with_two_signatures()
    {
        var package = keys.CreateSigned(scratch, "signer1", "signer2");
        var (output, json) = package.VerifyJson(Roots(3));
        Assert.True(output.ExitCode == 1, output.ToString());
        Assert.False(json["accepted"]!.GetValue<bool>());
        Assert.Equal(2, json["valid"]!.GetValue<int>());
        Assert.Equal(3, json["required"]!.GetValue<int>());
    }

    [Fact]
    public void Verify_rejects_an_archive_with_one_flipped_bit()
    {
        var package = keys.CreateSigned(scratch, "signer1", "signer2");
        Assert.Equal(0, package.Verify(Roots(2)).ExitCode);
        byte[] bytes = File.ReadAllBytes(package.Archive);
        bytes[bytes.Length / 2] ^= 0x01;
        File.WriteAllBytes(package.Archive, bytes);
        var (output, json) = package.VerifyJson(Roots(1));
        Assert.True(output.ExitCode == 1, output.ToString());
        Assert.All(json["signatures"]!.AsArray(), s => Assert.Contains("does not verify", s!["reason"]!.GetValue<string>()));
    }

    [Fact]
    public void Verify_rejects_signatures_under_another_root()
    {
        var package = keys.CreateSigned(scratch, "signer1", "signer2");
        var output = package.Verify("--roots", keys.StrangerRootCert, "--threshold", "1");
        Assert.True(output.ExitCode == 1, output.ToString());
        Assert.Contains("REJECTED", output.Stdout);
    }

    [Fact]
    public void Verify_at_a_time_before_the_certificates_are_valid_rejects()
    {
        var package = keys.CreateSigned(scratch, "signer1");
        Assert.Equal(0, package.Verify([.. Roots(1), "--at", DateTimeOffset.UtcNow.AddDays(1).ToString("yyyy-MM-ddTHH:mm:ssZ")]).ExitCode);
        var (output, json) = package.VerifyJson([.. Roots(1), "--at", "2001-01-01T00:00:00Z"]);
        Assert.True(output.ExitCode == 1, output.ToString());
        Assert.Contains("not at 2001-01-01T00:00:00Z", json["signatures"]![0]!["reason"]!.GetValue<string>());
    }

    [Theory, InlineData(2, 0), InlineData(3, 1)]
    public void Verify_with_a_trust_policy_folder_applies_its_threshold(int threshold, int exitCode)
    {
        var package = keys.CreateSigned(scratch, "signer1", "signer2");
        string folder = Directory.CreateDirectory(scratch["trust_policy"]).FullName;
        File.WriteAllText(Path.Combine(folder, "trust_policy.json"), $$"""{"ospkg_signature_threshold": {{threshold}}, "ospkg_fetch_method": "initramfs"}""");
        File.Copy(keys.RootCert, Path.Combine(folder, "ospkg_signing_root.pem"));
        var (output, json) = package.VerifyJson("--trust-policy", folder);
        Assert.True(output.ExitCode == exitCode, output.ToString());
        Assert.Equal(threshold, json["required"]!.GetValue<int>());
    }

    [Fact]
    public void Verify_of_a_missing_archive_is_unusable_input()
    {
        var package = keys.CreateSigned(scratch, "signer1");
        File.Delete(package.Archive);
        var output = package.Verify(Roots(1));
        Assert.True(output.ExitCode == 2, output.ToString());
        Assert.StartsWith("tabula: error: archive", output.Stderr);
    }

    [Fact]
    public void Verify_of_a_missing_descriptor_is_unusable_input()
    {
        var package = keys.CreateSigned(scratch, "signer1");
        File.Delete(package.Descriptor);
        var output = package.Verify(Roots(1));
        Assert.True(output.ExitCode == 2, output.ToString());
        Assert.StartsWith("tabula: error: descriptor", output.Stderr);
    }

    [Fact]
    public void Verify_of_a_descriptor_with_mismatched_arrays_is_unusable_input()
    {
        var package = keys.CreateSigned(scratch, "signer1", "signer2");
        var descriptor = package.ReadDescriptor();
        descriptor["signatures"]!.AsArray().RemoveAt(1);
        package.WriteDescriptor(descriptor);
        var output = package.Verify(Roots(1));
        Assert.True(output.ExitCode == 2, output.ToString());
        Assert.Contains("2 certificates but 1 signatures", output.Stderr);
    }

    [Fact]
    public void Verify_of_a_descriptor_version_2_is_unusable_input()
    {
        var package = keys.CreateSigned(scratch, "signer1");
        var descriptor = package.ReadDescriptor();
        descriptor["version"] = 2;
        package.WriteDescriptor(descriptor);
        var output = package.Verify(Roots(1));
        Assert.True(output.ExitCode == 2, output.ToString());
        Assert.Contains("version 2 is not supported", output.Stderr);
    }

    /// <summary>
    /// The library skips a DER certificate entry like any other bad entry (the rule is "invalid
    /// entries are skipped, not fatal"): the descriptor is usable, that one signature does not count.
    /// </summary>
    [Fact]
    public void Verify_skips_a_der_certificate_entry_instead_of_refusing_the_descriptor()
    {
        var package = keys.CreateSigned(scratch, "signer1", "signer2");
        var descriptor = package.ReadDescriptor();
        string pem = Encoding.ASCII.GetString(Convert.FromBase64String(descriptor["certificates"]![0]!.GetValue<string>()));
        byte[] der = Convert.FromBase64String(string.Concat(pem.Split('\n').Where(l => l.Length > 0 && !l.StartsWith("-----"))));
        descriptor["certificates"]![0] = Convert.ToBase64String(der);
        package.WriteDescriptor(descriptor);

        var (accepted, json) = package.VerifyJson(Roots(1));
        Assert.True(accepted.ExitCode == 0, accepted.ToString());
        Assert.Equal(2, json["found"]!.GetValue<int>());
        Assert.Equal(1, json["valid"]!.GetValue<int>());
        var skipped = json["signatures"]![0]!;
        Assert.False(skipped["valid"]!.GetValue<bool>());
        Assert.Contains("not PEM", skipped["reason"]!.GetValue<string>());

        var (rejected, _) = package.VerifyJson(Roots(2));
        Assert.True(rejected.ExitCode == 1, rejected.ToString());
    }

    [Fact]
    public void Verify_counts_one_key_once_even_if_its_signature_appears_twice()
    {
        var package = keys.CreateSigned(scratch, "signer1");
        var descriptor = package.ReadDescriptor();
        foreach (var array in new[] { "certificates", "signatures" })
            descriptor[array]!.AsArray().Add(JsonValue.Create(descriptor[array]![0]!.GetValue<string>()));
        package.WriteDescriptor(descriptor);
        var (output, json) = package.VerifyJson(Roots(2));
        Assert.True(output.ExitCode == 1, output.ToString());
        Assert.Equal(1, json["valid"]!.GetValue<int>());
    }
}

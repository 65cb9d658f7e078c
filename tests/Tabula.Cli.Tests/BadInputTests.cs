using System.IO.Compression;

namespace Tabula.Cli.Tests;

/// <summary>
/// Broken inputs give one line on stderr and exit 2, never a stack trace: `tabula: error: …`,
/// or for the check commands `FILE: invalid: …`.
/// </summary>
public sealed class BadInputTests(SignerKeys keys) : IClassFixture<SignerKeys>, IDisposable
{
    private readonly Scratch scratch = new();

    public void Dispose() => scratch.Dispose();

    public static TheoryData<string> Cases =>
    [
        "truncated archive", "archive with a path traversal entry", "archive without manifest", "archive over the size limit",
        "garbage descriptor", "descriptor that is a JSON array", "descriptor version as a string", "descriptor certificates as a number",
        "descriptor over the size limit", "roots PEM with bad base64", "roots file with no certificate", "signing key PEM with bad base64",
        "root key for keygen that is a certificate", "host config with wrong JSON types", "host config over the size limit",
        "trust policy that is not JSON", "verify time without a zone",
    ];

    [Theory, MemberData(nameof(Cases))]
    public void Bad_input_gives_one_error_line_and_exit_2_without_a_stack_trace(string name)
    {
        var output = Tabula.Run(Prepare(name));
        Assert.True(output.ExitCode == 2, output.ToString());
        string stderr = output.Stderr.TrimEnd('\n');
        Assert.False(stderr.Contains('\n'), $"more than one line on stderr:\n{output}");
        Assert.True(stderr.StartsWith("tabula: error:", StringComparison.Ordinal) || stderr.Contains(": invalid: "), output.ToString());
        Assert.DoesNotContain("   at ", output.Stderr);
        Assert.DoesNotContain("   at ", output.Stdout);
        Assert.DoesNotContain("Exception", output.Stderr);
    }

    private string[] Prepare(string name)
    {
        string[] verify = ["ospkg", "verify", "--descriptor", scratch["os.json"], "--archive", scratch["os.zip"], "--roots", keys.RootCert, "--threshold", "1"];
        string[] inspect = ["ospkg", "inspect", scratch["os.json"]];
        switch (name)
        {
            case "truncated archive":
                keys.CreateSigned(scratch, "signer1");
                using (var zip = File.OpenWrite(scratch["os.zip"])) zip.SetLength(zip.Length / 2);
                return inspect;
            case "archive with a path traversal entry":
                keys.CreateSigned(scratch, "signer1");
                using (var zip = ZipFile.Open(scratch["os.zip"], ZipArchiveMode.Update))
                    using (var entry = new StreamWriter(zip.CreateEntry("../../etc/evil").Open())) entry.Write("evil");
                return inspect;
            case "archive without manifest":
                keys.CreateSigned(scratch, "signer1");
                using (var zip = ZipFile.Open(scratch["os.zip"], ZipArchiveMode.Update)) zip.GetEntry("manifest.json")!.Delete();
                return inspect;
            case "archive over the size limit":
                keys.CreateSigned(scratch, "signer1");
                Truncate(scratch["os.zip"], "3G");
                return verify;
            case "garbage descriptor":
                keys.CreateSigned(scratch, "signer1");
                scratch.RandomFile("os.json", 5000);
                return verify;
            case "descriptor that is a JSON array":
                keys.CreateSigned(scratch, "signer1");
                File.WriteAllText(scratch["os.json"], "[1, 2, 3]");
                return verify;
            case "descriptor version as a string":
                keys.CreateSigned(scratch, "signer1");
                File.WriteAllText(scratch["os.json"], """{"version": "1", "os_pkg_url": "os.zip", "certificates": null, "signatures": null}""");
                return verify;
            case "descriptor certificates as a number":
                keys.CreateSigned(scratch, "signer1");
                File.WriteAllText(scratch["os.json"], """{"version": 1, "os_pkg_url": "os.zip", "certificates": 5, "signatures": 5}""");
                return verify;
            case "descriptor over the size limit":
                keys.CreateSigned(scratch, "signer1");
                Truncate(scratch["os.json"], "2M");
                return verify;
            case "roots PEM with bad base64":
                keys.CreateSigned(scratch, "signer1");
                File.WriteAllText(scratch["roots.pem"], "-----BEGIN CERTIFICATE-----\nMIIB!!!not*base64\n-----END CERTIFICATE-----\n");
                return [.. verify[..^4], "--roots", scratch["roots.pem"], "--threshold", "1"];
            case "roots file with no certificate":
                keys.CreateSigned(scratch, "signer1");
                File.WriteAllText(scratch["roots.pem"], "just some text\n");
                return [.. verify[..^4], "--roots", scratch["roots.pem"], "--threshold", "1"];
            case "signing key PEM with bad base64":
                keys.CreateSigned(scratch);
                File.WriteAllText(scratch["bad.key"], "-----BEGIN PRIVATE KEY-----\n@@@@\n-----END PRIVATE KEY-----\n");
                return ["ospkg", "sign", "--key", scratch["bad.key"], "--cert", keys.Cert("signer1"), scratch["os.json"]];
            case "root key for keygen that is a certificate":
                return ["keygen", "leaf", "--root-key", keys.RootCert, "--root-cert", keys.RootCert, "--out", scratch["leaf"]];
            case "host config with wrong JSON types":
                File.WriteAllText(scratch["host.json"], """{"network_mode": 7, "ospkg_pointer": ["x"]}""");
                return ["hostconfig", "check", scratch["host.json"]];
            case "host config over the size limit":
                File.WriteAllText(scratch["host.json"], "{}");
                Truncate(scratch["host.json"], "1M");
                return ["hostconfig", "check", scratch["host.json"]];
            case "trust policy that is not JSON":
                Directory.CreateDirectory(scratch["policy"]);
                File.WriteAllText(scratch["policy/trust_policy.json"], "threshold = 2\n");
                File.Copy(keys.RootCert, scratch["policy/ospkg_signing_root.pem"]);
                return ["trustpolicy", "check", scratch["policy"]];
            case "verify time without a zone":
                keys.CreateSigned(scratch, "signer1");
                return [.. verify, "--at", "2030-01-01T00:00:00"];
            default:
                throw new ArgumentException($"no case {name}", nameof(name));
        }
    }

    /// <summary>A sparse file of the given size (coreutils truncate), so limits are tested without writing gigabytes.</summary>
    private static void Truncate(string path, string size)
    {
        var output = ProcessRunner.Run("truncate", ["-s", size, path]);
        Assert.True(output.ExitCode == 0, output.ToString());
    }
}

using System.CommandLine;
using Tabula.Packaging;
using Tabula.Packaging.Crypto;

namespace Tabula.Cli.Commands;

/// <summary>`tabula keygen root|leaf`: Ed25519 keys and stmgr-shaped X.509 certificates.</summary>
internal static class KeygenCommand
{
    // stmgr defaults to 72 hours, which makes packages stop booting after three days.
    private static readonly TimeSpan DefaultRootValidity = TimeSpan.FromDays(3650);
    private static readonly TimeSpan DefaultLeafValidity = TimeSpan.FromDays(730);
    internal static readonly TimeSpan ExpiryWarning = TimeSpan.FromDays(30);

    public static Command Create() => new("keygen", "Create signing keys: a root CA and signer (leaf) certificates under it.")
    {
        CreateRoot(),
        CreateLeaf(),
    };

    private static Option<string> OutOption() => new("--out", "-o")
    {
        Description = "Output path prefix P: writes P.key (PKCS#8 PEM, mode 0600) and P.pem (certificate)",
        Required = true,
    };
    private static Option<string?> ValidFrom() => new("--valid-from") { Description = "Start of validity, RFC 3339 (default: now)" };
    private static Option<string?> ValidUntil(string defaultText) => new("--valid-until") { Description = $"End of validity, RFC 3339 (default: {defaultText})" };
    private static Option<bool> Force() => new("--force") { Description = "Overwrite existing files" };

    private static Command CreateRoot()
    {
        var outOption = OutOption();
        var from = ValidFrom();
        var until = ValidUntil("10 years after --valid-from");
        var force = Force();
        var command = new Command("root", "Create a self-signed Ed25519 root certificate (the ospkg_signing_root.pem of a trust policy).")
        {
            outOption, from, until, force,
        };
        command.SetAction(result => CliRun.Guard(() =>
        {
            var (notBefore, notAfter) = Validity(result.GetValue(from), result.GetValue(until), DefaultRootValidity);
            string prefix = result.GetValue(outOption)!;
            byte[] key = Ed25519.NewPrivateKey();
            try
            {
                byte[] der = CertificateBuilder.CreateRoot(key, notBefore, notAfter);
                Write(prefix, key, der, result.GetValue(force));
                Describe("root", prefix, Certificate.Parse(der));
            }
            finally { System.Security.Cryptography.CryptographicOperations.ZeroMemory(key); }
            return ExitCode.Ok;
        }));
        return command;
    }

    private static Command CreateLeaf()
    {
        var outOption = OutOption();
        var rootKey = new Option<string>("--root-key") { Description = "The root's private key (PEM)", Required = true };
        var rootCert = new Option<string>("--root-cert") { Description = "The root certificate (PEM)", Required = true };
        var from = ValidFrom();
        var until = ValidUntil("2 years after --valid-from, and never after the root's end");
        var force = Force();
        var command = new Command("leaf", "Create a signer key and its certificate, issued by a root. Each signer of an n-of-m policy needs one.")
        {
            outOption, rootKey, rootCert, from, until, force,
        };
        command.SetAction(result => CliRun.Guard(() =>
        {
            var root = CliRun.ParseFile(result.GetValue(rootCert)!, Limits.MaxPemBytes, "root certificate", b => Certificate.ParsePemBundle(b)[0]);
            byte[] rootPrivate = CliRun.ParseFile(result.GetValue(rootKey)!, Limits.MaxPemBytes, "root key", b => Ed25519Keys.FromPkcs8Pem(b));
            byte[] key = Ed25519.NewPrivateKey();
            try
            {
                var (notBefore, notAfter) = Validity(result.GetValue(from), result.GetValue(until), DefaultLeafValidity);
                if (result.GetValue(until) is null && notAfter > root.NotAfter) notAfter = root.NotAfter;
                if (notAfter > root.NotAfter)
                    CliRun.Warn($"the leaf outlives its root ({root.NotAfter:yyyy-MM-dd}); packages it signs stop verifying when the root expires");
                byte[] der = CertificateBuilder.CreateLeaf(rootPrivate, root, Ed25519.PublicKeyOf(key), notBefore, notAfter);
                Write(result.GetValue(outOption)!, key, der, result.GetValue(force));
                Describe("leaf", result.GetValue(outOption)!, Certificate.Parse(der));
                WarnIfExpiringSoon(notAfter);
            }
            finally
            {
                System.Security.Cryptography.CryptographicOperations.ZeroMemory(key);
                System.Security.Cryptography.CryptographicOperations.ZeroMemory(rootPrivate);
            }
            return ExitCode.Ok;
        }));
        return command;
    }

    internal static void WarnIfExpiringSoon(DateTimeOffset notAfter)
    {
        if (notAfter - DateTimeOffset.UtcNow < ExpiryWarning)
            CliRun.Warn($"the signer certificate expires {notAfter:yyyy-MM-ddTHH:mm:ssZ}, within 30 days; packages signed with it stop booting then");
    }

    private static (DateTimeOffset, DateTimeOffset) Validity(string? from, string? until, TimeSpan defaultLength)
    {
        var notBefore = from is null ? DateTimeOffset.UtcNow : CliRun.ParseTime(from, "--valid-from");
        var notAfter = until is null ? notBefore + defaultLength : CliRun.ParseTime(until, "--valid-until");
        if (notAfter <= notBefore)
            throw new UsageException("--valid-until must be after --valid-from");
        return (notBefore, notAfter);
    }

    private static void Write(string prefix, byte[] privateKey, byte[] certificateDer, bool force)
    {
        string keyPath = prefix + ".key", certPath = prefix + ".pem";
        if (!force)
            foreach (var path in new[] { keyPath, certPath })
                if (File.Exists(path)) throw new UsageException($"{path} exists; pass --force to overwrite it");
        if (Path.GetDirectoryName(Path.GetFullPath(keyPath)) is { } directory) Directory.CreateDirectory(directory);
        var options = new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        };
        // A file that already existed keeps its mode on FileMode.Create, so set it explicitly too.
        using (var keyFile = new StreamWriter(new FileStream(keyPath, options)))
            keyFile.Write(Ed25519Keys.ToPkcs8Pem(privateKey));
        File.SetUnixFileMode(keyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.WriteAllText(certPath, Pem.EncodeCertificate(certificateDer));
    }

    private static void Describe(string kind, string prefix, Certificate certificate) =>
        Console.WriteLine($"{kind} key {prefix}.key, certificate {prefix}.pem\n" +
                          $"  CN {certificate.CommonName}\n" +
                          $"  valid {certificate.NotBefore:yyyy-MM-ddTHH:mm:ssZ} … {certificate.NotAfter:yyyy-MM-ddTHH:mm:ssZ}\n" +
                          $"  key sha256 {certificate.PublicKeySha256Hex}");
}

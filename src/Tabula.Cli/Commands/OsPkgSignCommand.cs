using System.CommandLine;
using System.Security.Cryptography;
using Tabula.Packaging;
using Tabula.Packaging.Crypto;

namespace Tabula.Cli.Commands;

/// <summary>`tabula ospkg sign`: append one Ed25519 signature over SHA-256 of the archive.</summary>
internal static class OsPkgSignCommand
{
    public static Command Create()
    {
        var key = new Option<string>("--key") { Description = "Signer private key (PKCS#8 PEM, Ed25519)", Required = true };
        var cert = new Option<string>("--cert") { Description = "Signer certificate (PEM) issued by a signing root", Required = true };
        var archive = new Option<string?>("--archive") { Description = "The archive (default: NAME.zip beside NAME.json)" };
        var descriptor = new Argument<string>("descriptor") { Description = "NAME.json; the signature is appended in place" };
        var command = new Command("sign", "Append one signature (certificate + Ed25519 signature over SHA-256 of the zip) to a descriptor.")
        {
            key, cert, archive, descriptor,
        };
        command.SetAction(result => CliRun.Guard(() =>
        {
            string descriptorPath = result.GetValue(descriptor)!;
            string archivePath = result.GetValue(archive) ?? OsPkgCommand.ArchiveBeside(descriptorPath);
            var current = CliRun.ParseFile(descriptorPath, Limits.MaxDescriptorBytes, "descriptor", b => Descriptor.Parse(b));
            byte[] certPem = CliRun.ReadFile(result.GetValue(cert)!, Limits.MaxPemBytes, "certificate");
            Certificate certificate;
            try { certificate = Certificate.Parse(Pem.ReadSingle(certPem, "CERTIFICATE")); }
            catch (PackageFormatException e) { throw e.WithContext(result.GetValue(cert)!); }
            byte[] privateKey = CliRun.ParseFile(result.GetValue(key)!, Limits.MaxPemBytes, "key", b => Ed25519Keys.FromPkcs8Pem(b));
            try
            {
                if (!certificate.HasEd25519Key || !Ed25519.PublicKeyOf(privateKey).AsSpan().SequenceEqual(certificate.PublicKey))
                    throw new UsageException($"{result.GetValue(key)} is not the private key of {result.GetValue(cert)}");
                foreach (var existing in SignerKeys(current))
                    if (existing == certificate.PublicKeySha256Hex)
                        throw new UsageException($"this key already signed {descriptorPath}; each signature must come from a different key");
                if (!File.Exists(archivePath)) throw new UsageException($"archive {archivePath} does not exist (pass --archive)");
                byte[] digest;
                using (var zip = File.OpenRead(archivePath)) digest = PackageVerifier.HashArchive(zip);
                byte[] signature = Ed25519.Sign(privateKey, digest);
                var signed = current.AddSignature(Pem.EncodeCertificate(certificate.Der), signature);
                string temporary = descriptorPath + ".tmp";
                File.WriteAllBytes(temporary, signed.ToJson());
                File.Move(temporary, descriptorPath, overwrite: true);
                Console.WriteLine($"signed {descriptorPath}: signature {signed.Count} by key sha256 {certificate.PublicKeySha256Hex[..16]}… over archive sha256 {Hex.Encode(digest)}");
                if (!certificate.IsValidAt(DateTimeOffset.UtcNow))
                    CliRun.Warn($"the certificate is not valid now ({certificate.NotBefore:yyyy-MM-dd} … {certificate.NotAfter:yyyy-MM-dd}); stboot will not count this signature");
                else KeygenCommand.WarnIfExpiringSoon(certificate.NotAfter);
            }
            finally { CryptographicOperations.ZeroMemory(privateKey); }
            return ExitCode.Ok;
        }));
        return command;
    }

    /// <summary>Key hashes of the signers already present (entries that don't parse are ignored here).</summary>
    private static IEnumerable<string> SignerKeys(Descriptor descriptor)
    {
        foreach (var entry in descriptor.Certificates)
        {
            string? keyHash = null;
            try { keyHash = Certificate.Parse(Pem.ReadSingle(Convert.FromBase64String(entry), "CERTIFICATE")).PublicKeySha256Hex; }
            catch (Exception e) when (e is FormatException or PackageFormatException) { }
            if (keyHash is not null) yield return keyHash;
        }
    }
}

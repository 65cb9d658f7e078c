using System.CommandLine;
using Tabula.Packaging;

namespace Tabula.Cli.Commands;

/// <summary>`tabula ospkg inspect`: what a descriptor and its archive contain, without judging trust.</summary>
internal static class OsPkgInspectCommand
{
    public static Command Create()
    {
        var descriptor = new Argument<string>("descriptor") { Description = "NAME.json" };
        var archive = new Option<string?>("--archive", "-a") { Description = "NAME.zip (default: beside the descriptor, if present)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var command = new Command("inspect", "Show a package's descriptor (URL, signers) and archive (manifest, entries, SHA-256).")
        {
            descriptor, archive, json,
        };
        command.SetAction(result => CliRun.Guard(() =>
        {
            string descriptorPath = result.GetValue(descriptor)!;
            var parsed = CliRun.ParseFile(descriptorPath, Limits.MaxDescriptorBytes, "descriptor", b => Descriptor.Parse(b));
            var signers = new List<SignerOutput>();
            for (int i = 0; i < parsed.Count; i++) signers.Add(DescribeSigner(i, parsed.Certificates[i], parsed.Signatures[i]));

            string? archivePath = result.GetValue(archive) ?? OsPkgCommand.ArchiveBeside(descriptorPath);
            if (result.GetValue(archive) is null && !File.Exists(archivePath)) archivePath = null;
            string? digest = null;
            long? size = null;
            ManifestOutput? manifest = null;
            List<EntryOutput>? entries = null;
            if (archivePath is not null)
            {
                if (!File.Exists(archivePath)) throw new UsageException($"archive {archivePath} does not exist");
                using (var zip = File.OpenRead(archivePath)) { digest = Hex.Encode(PackageVerifier.HashArchive(zip)); size = zip.Length; }
                try
                {
                    using var opened = OsPackageArchive.Open(File.OpenRead(archivePath));
                    var m = opened.Manifest;
                    manifest = new ManifestOutput(m.Label, m.KernelPath, m.InitramfsPath, m.Cmdline, m.Release == 0 ? null : m.Release, m.MachineClass);
                    entries = [.. opened.Entries.Select(e => new EntryOutput(e.Name, e.Size, e.CompressedSize))];
                }
                catch (PackageFormatException e) { throw e.WithContext(archivePath); }
            }
            var output = new InspectOutput(descriptorPath, parsed.OsPackageUrl, parsed.Count, signers, archivePath, digest, size, manifest, entries);
            if (result.GetValue(json)) { CliJsonContext.Print(output, CliJsonContext.Default.InspectOutput); return ExitCode.Ok; }

            Console.WriteLine($"descriptor {descriptorPath}");
            Console.WriteLine($"  os_pkg_url  {(parsed.OsPackageUrl.Length == 0 ? "(empty)" : parsed.OsPackageUrl)}");
            Console.WriteLine($"  signatures  {parsed.Count}");
            foreach (var s in signers)
                Console.WriteLine(s.Error is null
                    ? $"    [{s.Index}] {s.Kind}, key sha256 {s.KeySha256}, CN {s.CommonName}, valid {s.NotBefore} … {s.NotAfter}"
                    : $"    [{s.Index}] unreadable: {s.Error}");
            if (archivePath is not null && manifest is not null)
            {
                Console.WriteLine($"archive {archivePath} ({size} bytes, sha256 {digest})");
                Console.WriteLine($"  label      {manifest.Label}");
                Console.WriteLine($"  kernel     {manifest.Kernel}");
                Console.WriteLine($"  initramfs  {manifest.Initramfs}");
                Console.WriteLine($"  cmdline    {manifest.Cmdline}");
                if (manifest.Release is { } release) Console.WriteLine($"  release    {release}");
                if (manifest.MachineClass is { } machineClass) Console.WriteLine($"  class      {machineClass}");
                foreach (var e in entries!) Console.WriteLine($"    {e.Size,12} {e.CompressedSize,12}  {e.Name}");
            }
            return ExitCode.Ok;
        }));
        return command;
    }

    private static SignerOutput DescribeSigner(int index, string certificateEntry, string signatureEntry)
    {
        string kind = "unknown";
        try
        {
            byte[] signature = Convert.FromBase64String(signatureEntry);
            kind = SigsumProof.LooksLikeProof(signature) ? "Sigsum proof" : $"Ed25519 signature ({signature.Length} bytes)";
            var certificate = Certificate.Parse(Pem.ReadSingle(Convert.FromBase64String(certificateEntry), "CERTIFICATE"));
            return new SignerOutput(index, certificate.CommonName, certificate.PublicKeySha256Hex,
                certificate.NotBefore.ToString("yyyy-MM-ddTHH:mm:ssZ"), certificate.NotAfter.ToString("yyyy-MM-ddTHH:mm:ssZ"), kind, null);
        }
        catch (Exception e) when (e is FormatException or PackageFormatException)
        {
            return new SignerOutput(index, null, null, null, null, kind, e.Message);
        }
    }
}

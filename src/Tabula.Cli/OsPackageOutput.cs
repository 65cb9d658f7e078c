using System.CommandLine;
using Tabula.Packaging;

namespace Tabula.Cli;

/// <summary>
/// How an unsigned OS package lands on disk, shared by `ospkg create` and `image relay`: the options --out NAME,
/// --url and --force; NAME.zip written atomically (<see cref="CliRun.WriteAtomically"/>: a failure never leaves half an archive);
/// then an unsigned NAME.json (stmgr's layout, ready for `ospkg sign`).
/// </summary>
internal sealed class OsPackageOutput
{
    readonly Option<string> output = new("--out", "-o") { Description = "Output name: writes NAME.zip and NAME.json", Required = true };
    readonly Option<string?> url = new("--url")
    {
        Description = "os_pkg_url: where the archive will be served (absolute, or relative to the descriptor URL; default: NAME.zip)",
    };
    readonly Option<bool> force = new("--force") { Description = "Overwrite existing files" };

    /// <summary>The options, to add to a command.</summary>
    public IEnumerable<Option> Options => [output, url, force];

    /// <summary>Paths and os_pkg_url from the options; refuses existing files without --force and a URL that is not .zip.</summary>
    public Target Resolve(ParseResult result)
    {
        string name = result.GetValue(output)!;
        if (name.EndsWith(".zip", StringComparison.Ordinal) || name.EndsWith(".json", StringComparison.Ordinal))
            name = Path.ChangeExtension(name, null);
        string zipPath = name + ".zip", jsonPath = name + ".json";
        if (!result.GetValue(force))
            foreach (var path in new[] { zipPath, jsonPath })
                if (File.Exists(path)) throw new UsageException($"{path} exists; pass --force to overwrite it");
        string archiveUrl = result.GetValue(url) ?? Path.GetFileName(zipPath);
        if (!archiveUrl.EndsWith(".zip", StringComparison.Ordinal))
            throw new UsageException($"--url must end in .zip (stboot requires it), got \"{archiveUrl}\"");
        return new Target(zipPath, jsonPath, archiveUrl);
    }

    /// <summary>Where a package goes.</summary>
    public sealed record Target(string ZipPath, string JsonPath, string Url)
    {
        /// <summary>
        /// Writes NAME.zip with <paramref name="writeArchive"/> (atomically), then the unsigned
        /// NAME.json. Returns what <paramref name="writeArchive"/> returned and the archive's size and SHA-256.
        /// </summary>
        public (T Value, long ZipBytes, byte[] Sha256) Write<T>(Func<Stream, T> writeArchive)
        {
            T value = CliRun.WriteAtomically(ZipPath, writeArchive);
            File.WriteAllBytes(JsonPath, Descriptor.Unsigned(Url).ToJson());

            byte[] digest;
            using (var zip = File.OpenRead(ZipPath)) digest = PackageVerifier.HashArchive(zip);
            return (value, new FileInfo(ZipPath).Length, digest);
        }

        /// <summary>The lines `ospkg create` has always printed.</summary>
        public void Print(long zipBytes, byte[] sha256, Manifest manifest)
        {
            Console.WriteLine($"created {ZipPath} ({zipBytes} bytes, sha256 {Hex.Encode(sha256)})");
            Console.WriteLine($"created {JsonPath} (unsigned; os_pkg_url {Url})");
            Console.WriteLine($"  kernel {manifest.KernelPath}, initramfs {manifest.InitramfsPath}, cmdline \"{manifest.Cmdline}\"");
            if (manifest.Release != 0 || manifest.MachineClass is not null)
                Console.WriteLine($"  release {(manifest.Release == 0 ? "(none)" : manifest.Release)}, machine class {manifest.MachineClass ?? "(none)"}");
        }
    }
}

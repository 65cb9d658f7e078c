using System.Diagnostics;
using System.IO.Compression;
using Tabula.Packaging;
using Tabula.Packaging.Cpio;

namespace Tabula.Images.KernelModules;

/// <summary>
/// One kernel release's module directory (/lib/modules/RELEASE) on the build machine: resolves closures and
/// reads modules as plain ELF objects, decompressing .ko.xz (with xz), .ko.zst (with zstd) and .ko.gz.
/// </summary>
/// <remarks>
/// Modules go into images uncompressed: the loader then needs no MODULE_INIT_COMPRESSED_FILE, which only works
/// on kernels built with CONFIG_MODULE_DECOMPRESS for the same compression (Debian 12's 6.1 kernels have it
/// off and ship plain .ko; later kernels ship .ko.xz). The initramfs is compressed as a whole anyway.
/// </remarks>
public sealed class ModuleTree
{
    ModuleTree(string directory, string release, ModuleDependencies dependencies)
    {
        Directory = directory;
        Release = release;
        Dependencies = dependencies;
    }

    /// <summary>The release's module directory.</summary>
    public string Directory { get; }

    /// <summary>The kernel release (uname -r), e.g. 6.1.0-56-amd64.</summary>
    public string Release { get; }

    /// <summary>The parsed modules.dep.</summary>
    public ModuleDependencies Dependencies { get; }

    /// <summary>Opens <paramref name="root"/>/<paramref name="release"/> and parses its modules.dep.</summary>
    public static ModuleTree Open(string release, string root = "/lib/modules")
    {
        ArgumentException.ThrowIfNullOrEmpty(release);
        string directory = Path.Combine(root, release);
        return new ModuleTree(directory, release, ModuleDependencies.Load(Path.Combine(directory, "modules.dep")));
    }

    /// <summary>The uncompressed bytes of the module at <paramref name="relativePath"/> (as listed in modules.dep).</summary>
    public byte[] ReadUncompressed(string relativePath)
    {
        string path = Path.Combine(Directory, relativePath);
        try
        {
            byte[] bytes = relativePath switch
            {
                _ when relativePath.EndsWith(".ko.xz", StringComparison.Ordinal) => RunDecompressor("xz", path),
                _ when relativePath.EndsWith(".ko.zst", StringComparison.Ordinal) => RunDecompressor("zstd", path),
                _ when relativePath.EndsWith(".ko.gz", StringComparison.Ordinal) => Gunzip(path),
                _ => File.ReadAllBytes(path),
            };
            if (bytes.Length > Limits.MaxModuleBytes)
                ImageException.Throw(ImageError.ModuleDecompressionFailed, $"{path}: over {Limits.MaxModuleBytes} bytes");
            if (bytes.Length < 4 || bytes[0] != 0x7F || bytes[1] != (byte)'E' || bytes[2] != (byte)'L' || bytes[3] != (byte)'F')
                ImageException.Throw(ImageError.ModuleDecompressionFailed, $"{path}: not an ELF object after decompression");
            return bytes;
        }
        catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception or InvalidDataException)
        {
            ImageException.Throw(ImageError.ModuleDecompressionFailed, $"{path}: {e.Message}", e);
            return [];
        }
    }

    /// <summary>
    /// Adds the closure of <paramref name="names"/> to <paramref name="archive"/> as uncompressed .ko files under
    /// lib/modules/RELEASE/ (paths as in modules.dep), plus <see cref="InitramfsLayout.ModuleLoadOrder"/>. Returns the load order.
    /// </summary>
    public IReadOnlyList<string> AddClosureTo(CpioArchive archive, IEnumerable<string> names)
    {
        ArgumentNullException.ThrowIfNull(archive);
        IReadOnlyList<string> closure = Dependencies.Closure(names);
        var loadOrder = new List<string>(closure.Count);
        foreach (string relative in closure)
        {
            string plain = StripCompression(relative);
            string inArchive = $"{InitramfsLayout.ModulesDirectory}/{Release}/{plain}";
            archive.AddFile(inArchive, ReadUncompressed(relative));
            loadOrder.Add("/" + inArchive);
        }
        archive.AddFile(InitramfsLayout.ModuleLoadOrder, System.Text.Encoding.UTF8.GetBytes(string.Join('\n', loadOrder) + "\n"));
        return loadOrder;
    }

    static string StripCompression(string path) =>
        path.EndsWith(".ko.xz", StringComparison.Ordinal) ? path[..^3]
        : path.EndsWith(".ko.zst", StringComparison.Ordinal) ? path[..^4]
        : path.EndsWith(".ko.gz", StringComparison.Ordinal) ? path[..^3]
        : path;

    static byte[] Gunzip(string path)
    {
        using var file = File.OpenRead(path);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var memory = new MemoryStream();
        gzip.CopyTo(memory);
        return memory.ToArray();
    }

    static byte[] RunDecompressor(string tool, string path)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-dc");
        start.ArgumentList.Add("--");
        start.ArgumentList.Add(path);
        using var process = Process.Start(start) ?? throw new IOException($"could not start {tool}");
        var stderr = process.StandardError.ReadToEndAsync();
        using var memory = new MemoryStream();
        process.StandardOutput.BaseStream.CopyTo(memory);
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new IOException($"{tool} -dc exited {process.ExitCode}: {stderr.Result.Trim()}");
        return memory.ToArray();
    }
}

using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using Tabula.Machine.Modules;
using Tabula.Packaging;
using Tabula.Packaging.Cpio;

namespace Tabula.Images.KernelModules;

/// <summary>
/// One kernel release's module directory (/lib/modules/RELEASE) on the build machine: chooses the modules an image
/// carries (<see cref="Select"/>), reads them as plain ELF objects, decompressing .ko.xz (with xz), .ko.zst (with
/// zstd) and .ko.gz, and writes them with the index files PID 1's coldplug reads (modules.dep, modules.alias; the
/// machine layer owns both formats: <see cref="ModuleDependencies"/>, <see cref="ModuleAliases"/>).
/// </summary>
/// <remarks>
/// Modules go into images uncompressed: the loader then needs no MODULE_INIT_COMPRESSED_FILE, which only works
/// on kernels built with CONFIG_MODULE_DECOMPRESS for the same compression (Debian 12's 6.1 kernels have it
/// off and ship plain .ko; later kernels ship .ko.xz). The initramfs is compressed as a whole anyway.
/// </remarks>
public sealed class ModuleTree
{
    readonly Dictionary<string, IReadOnlySet<string>> closures = new(StringComparer.Ordinal);

    ModuleTree(string directory, string release, ModuleDependencies dependencies, ModuleAliases aliases)
    {
        Directory = directory;
        Release = release;
        Dependencies = dependencies;
        Aliases = aliases;
    }

    /// <summary>The release's module directory.</summary>
    public string Directory { get; }

    /// <summary>The kernel release (uname -r), e.g. 6.1.0-56-amd64.</summary>
    public string Release { get; }

    /// <summary>The parsed modules.dep.</summary>
    public ModuleDependencies Dependencies { get; }

    /// <summary>The parsed modules.alias (empty when the tree has none).</summary>
    public ModuleAliases Aliases { get; }

    /// <summary>
    /// Opens <paramref name="root"/>/<paramref name="release"/> and parses its modules.dep and modules.alias (a tree
    /// without modules.alias gives images whose every module is loaded unconditionally at boot, since no device can
    /// ask for one). Errors of either file are <see cref="ImageException"/>s.
    /// </summary>
    public static ModuleTree Open(string release, string root = "/lib/modules")
    {
        ArgumentException.ThrowIfNullOrEmpty(release);
        string directory = Path.Combine(root, release);
        return Index(() => new ModuleTree(directory, release,
            ModuleDependencies.Load(Path.Combine(directory, InitramfsLayout.ModulesDepFile)),
            ModuleAliases.Load(Path.Combine(directory, InitramfsLayout.ModulesAliasFile))));
    }

    /// <summary>
    /// The modules an image made for <paramref name="names"/> carries, as modules.dep paths in load order: the
    /// dependency closure of the names and of their bus transports (<see cref="Transports"/>).
    /// </summary>
    public IReadOnlyList<string> Select(IEnumerable<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        var requested = names.ToList();
        return Index(() =>
        {
            var closure = Dependencies.Closure(requested);
            return Dependencies.Closure([.. requested, .. Transports(closure.Select(ModuleDependencies.NameOf))]);
        });
    }

    /// <summary>
    /// The modules that make the devices of the buses <paramref name="modules"/> drive appear, found in depmod's data
    /// rather than in a list of ours. A module's buses are those of its device aliases (virtio_net:
    /// <c>virtio:d00000001v*</c> → virtio). A bus's core is what every driver on the bus depends on (virtio: virtio,
    /// virtio_ring); its transports are the modules that drive devices of another bus, none of this one, and depend on
    /// the whole core: virtio_pci (<c>pci:v00001AF4…</c>) and virtio_mmio for virtio; the host controllers for usb.
    /// Repeated for the transports' own buses (pci has no core: its drivers share no module). A bus whose drivers
    /// share nothing, a bus with a single driver, or a module without device aliases (wireguard), adds nothing.
    /// </summary>
    public IReadOnlyList<string> Transports(IEnumerable<string> modules)
    {
        var busesOf = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var alias in Aliases.Entries)
            if (alias.Bus is { } bus && Dependencies.PathOf(alias.Module) is not null)
                (busesOf.TryGetValue(alias.Module, out var set) ? set : busesOf[alias.Module] = new(StringComparer.Ordinal)).Add(bus);

        var added = new List<string>();
        var seenBuses = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Queue<string>(modules.SelectMany(m => busesOf.GetValueOrDefault(m) ?? []));
        while (pending.TryDequeue(out string? bus))
        {
            if (!seenBuses.Add(bus)) continue;
            var drivers = busesOf.Where(kv => kv.Value.Contains(bus)).Select(kv => kv.Key).ToList();
            if (drivers.Count < 2) continue;   // one driver: its own libraries cannot be told from a bus core
            HashSet<string>? core = null;
            foreach (string driver in drivers)
            {
                var dependencies = ClosureNames(driver).Where(n => n != driver);
                if (core is null) core = new HashSet<string>(dependencies, StringComparer.Ordinal);
                else core.IntersectWith(dependencies);
            }
            if (core is null || core.Count == 0) continue;
            foreach (var (module, buses) in busesOf.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                if (buses.Contains(bus) || added.Contains(module) || !core.IsSubsetOf(ClosureNames(module))) continue;
                added.Add(module);
                foreach (string next in buses) pending.Enqueue(next);
            }
        }
        return added;
    }

    IReadOnlySet<string> ClosureNames(string module)
    {
        if (!closures.TryGetValue(module, out var names))
        {
            try { names = Dependencies.Closure([module]).Select(ModuleDependencies.NameOf).ToHashSet(StringComparer.Ordinal); }
            catch (ModuleIndexException) { names = new HashSet<string>(); }   // a broken entry elsewhere in the tree
            closures[module] = names;
        }
        return names;
    }

    /// <summary>Runs <paramref name="work"/>, turning the machine layer's index errors into the image builder's.</summary>
    static T Index<T>(Func<T> work)
    {
        try { return work(); }
        catch (ModuleIndexException e)
        {
            ImageException.Throw(e.Reason switch
            {
                ModuleIndexError.ModuleNotFound => ImageError.ModuleNotFound,
                ModuleIndexError.DependencyCycle => ImageError.ModuleDependencyCycle,
                _ => ImageError.ModulesDepMalformed,
            }, e.Message, e);
            return default!;
        }
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
    /// Adds <see cref="Select"/>(<paramref name="names"/>) to <paramref name="archive"/> as uncompressed .ko files under
    /// lib/modules/RELEASE/ (paths as in modules.dep), with that directory's <see cref="InitramfsLayout.ModulesDepFile"/>
    /// and <see cref="InitramfsLayout.ModulesAliasFile"/> for exactly these modules. Returns the modules' paths on the
    /// machine, dependencies first.
    /// </summary>
    public IReadOnlyList<string> AddClosureTo(CpioArchive archive, IEnumerable<string> names)
    {
        ArgumentNullException.ThrowIfNull(archive);
        IReadOnlyList<string> selection = Select(names);
        var paths = new List<string>(selection.Count);
        var dep = new StringBuilder();
        string directory = $"{InitramfsLayout.ModulesDirectory}/{Release}";
        foreach (string relative in selection)
        {
            string plain = StripCompression(relative);
            archive.AddFile($"{directory}/{plain}", ReadUncompressed(relative));
            paths.Add($"/{directory}/{plain}");
            dep.Append(plain).Append(':');
            foreach (string dependency in Dependencies.DependenciesOf(relative))
                dep.Append(' ').Append(StripCompression(dependency));
            dep.Append('\n');
        }
        var carried = selection.Select(ModuleDependencies.NameOf).ToHashSet(StringComparer.Ordinal);
        archive.AddFile($"{directory}/{InitramfsLayout.ModulesDepFile}", Encoding.UTF8.GetBytes(dep.ToString()));
        archive.AddFile($"{directory}/{InitramfsLayout.ModulesAliasFile}", Encoding.UTF8.GetBytes(Aliases.Subset(carried)));
        return paths;
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

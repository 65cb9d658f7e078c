using System.Text;

namespace Tabula.Machine.Modules;

/// <summary>
/// The dependency graph of a kernel release's modules.dep (written by depmod, and by Tabula.Images for the subset an
/// image carries): one line per module, <c>path/to/mod.ko[.xz]: dep1.ko[.xz] dep2.ko[.xz]</c>, paths relative to
/// /lib/modules/RELEASE. Read by the image builder on the build machine and by PID 1 on the machine.
/// </summary>
public sealed class ModuleDependencies
{
    static readonly string[] Suffixes = [".ko.xz", ".ko.zst", ".ko.gz", ".ko"];

    readonly Dictionary<string, string[]> dependenciesByPath;
    readonly Dictionary<string, string> pathByName;

    ModuleDependencies(Dictionary<string, string[]> dependenciesByPath)
    {
        this.dependenciesByPath = dependenciesByPath;
        pathByName = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string path in dependenciesByPath.Keys)
            pathByName.TryAdd(NameOf(path), path);
    }

    /// <summary>Number of modules listed.</summary>
    public int Count => dependenciesByPath.Count;

    /// <summary>Every module path, in no particular order.</summary>
    public IEnumerable<string> Paths => dependenciesByPath.Keys;

    /// <summary>The direct dependencies of the module at <paramref name="path"/> as listed (empty when unknown).</summary>
    public IReadOnlyList<string> DependenciesOf(string path) => dependenciesByPath.TryGetValue(path, out var deps) ? deps : [];

    /// <summary>The path of the module called <paramref name="name"/> ('-' read as '_'), or null.</summary>
    public string? PathOf(string name) => pathByName.GetValueOrDefault(name.Replace('-', '_'));

    /// <summary>
    /// Parses modules.dep bytes, bounded by <see cref="MachineLimits.MaxModuleIndexBytes"/>,
    /// <see cref="MachineLimits.MaxModuleIndexLines"/> and <see cref="MachineLimits.MaxModuleIndexLineBytes"/>.
    /// Throws <see cref="ModuleIndexException"/>.
    /// </summary>
    public static ModuleDependencies Parse(ReadOnlyMemory<byte> bytes)
    {
        var map = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        int number = 0;
        foreach (string line in ModuleIndexText.Lines(bytes, "modules.dep"))
        {
            number++;
            if (line.Length == 0 || line[0] == '#')
                continue;
            int colon = line.IndexOf(':');
            if (colon <= 0)
                ModuleIndexException.Throw(ModuleIndexError.DependencyMalformed, $"modules.dep line {number}: no \"module:\" prefix");
            string module = line[..colon].Trim();
            string[] deps = line[(colon + 1)..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (module.Length == 0 || module.Contains(' ') || !map.TryAdd(module, deps))
                ModuleIndexException.Throw(ModuleIndexError.DependencyMalformed, $"modules.dep line {number}: empty or repeated module \"{module}\"");
            // depmod lists one module per name (its search order picks which); two paths with one name would make
            // "load m" ambiguous, so such an index is refused rather than resolved to whichever came first.
            if (!names.Add(NameOf(module)))
                ModuleIndexException.Throw(ModuleIndexError.DependencyMalformed, $"modules.dep line {number}: a second module named \"{NameOf(module)}\"");
        }
        return new ModuleDependencies(map);
    }

    /// <summary>Parses modules.dep text (tests, and what the image builder writes).</summary>
    public static ModuleDependencies Parse(string text) => Parse(Encoding.UTF8.GetBytes(text));

    /// <summary>Reads and parses a modules.dep file.</summary>
    public static ModuleDependencies Load(string path) => Parse(ModuleIndexText.ReadFile(path));

    /// <summary>
    /// The module name as modprobe sees it: the file name without .ko and compression suffix, '-' read as '_'.
    /// </summary>
    public static string NameOf(string path)
    {
        string file = Path.GetFileName(path);
        foreach (string suffix in Suffixes)
            if (file.EndsWith(suffix, StringComparison.Ordinal))
                return file[..^suffix.Length].Replace('-', '_');
        return file.Replace('-', '_');
    }

    /// <summary>
    /// The closure of <paramref name="names"/> as module paths in load order: every module after all of its
    /// dependencies. Dependencies are visited right to left, as modprobe loads them (last listed first).
    /// Each module appears once. Throws <see cref="ModuleIndexException"/> for unknown modules or a cycle.
    /// </summary>
    public IReadOnlyList<string> Closure(IEnumerable<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        var order = new List<string>();
        var state = new Dictionary<string, bool>(StringComparer.Ordinal); // false = visiting, true = done
        foreach (string name in names)
        {
            string? path = PathOf(name);
            if (path is null)
                ModuleIndexException.Throw(ModuleIndexError.ModuleNotFound, $"\"{name}\" is not in modules.dep");
            Visit(path!, order, state, 0);
        }
        return order;
    }

    void Visit(string path, List<string> order, Dictionary<string, bool> state, int depth)
    {
        if (state.TryGetValue(path, out bool done))
        {
            if (!done)
                ModuleIndexException.Throw(ModuleIndexError.DependencyCycle, $"\"{path}\" depends on itself");
            return;
        }
        if (!dependenciesByPath.TryGetValue(path, out string[]? deps))
            ModuleIndexException.Throw(ModuleIndexError.ModuleNotFound, $"dependency \"{path}\" is not in modules.dep");
        if (depth > MachineLimits.MaxModuleDependencyDepth)
            ModuleIndexException.Throw(ModuleIndexError.TooLarge, $"\"{path}\": dependencies nested deeper than {MachineLimits.MaxModuleDependencyDepth}");
        state[path] = false;
        for (int i = deps!.Length - 1; i >= 0; i--)
            Visit(deps[i], order, state, depth + 1);
        state[path] = true;
        order.Add(path);
    }
}

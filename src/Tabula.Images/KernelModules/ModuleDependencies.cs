namespace Tabula.Images.KernelModules;

/// <summary>
/// The dependency graph from a kernel release's modules.dep (written by depmod): one line per module,
/// <c>path/to/mod.ko[.xz]: dep1.ko[.xz] dep2.ko[.xz]</c>, paths relative to /lib/modules/RELEASE.
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

    /// <summary>Parses modules.dep text. Throws <see cref="ImageException"/> (<see cref="ImageError.ModulesDepMalformed"/>).</summary>
    public static ModuleDependencies Parse(TextReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var map = new Dictionary<string, string[]>(StringComparer.Ordinal);
        int lineNumber = 0;
        for (string? line = reader.ReadLine(); line is not null; line = reader.ReadLine())
        {
            lineNumber++;
            if (line.Length == 0 || line[0] == '#')
                continue;
            int colon = line.IndexOf(':');
            if (colon <= 0)
                ImageException.Throw(ImageError.ModulesDepMalformed, $"line {lineNumber}: no \"module:\" prefix");
            string module = line[..colon].Trim();
            string[] deps = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (module.Length == 0 || !map.TryAdd(module, deps))
                ImageException.Throw(ImageError.ModulesDepMalformed, $"line {lineNumber}: empty or repeated module \"{module}\"");
        }
        return new ModuleDependencies(map);
    }

    /// <summary>Reads /lib/modules/RELEASE/modules.dep (or any file), bounded by <see cref="Limits.MaxModulesDepBytes"/>.</summary>
    public static ModuleDependencies Load(string modulesDepPath)
    {
        var info = new FileInfo(modulesDepPath);
        if (info.Length > Limits.MaxModulesDepBytes)
            ImageException.Throw(ImageError.ModulesDepMalformed, $"{modulesDepPath} has {info.Length} bytes");
        using var reader = new StreamReader(modulesDepPath);
        return Parse(reader);
    }

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
    /// Each module appears once. Throws <see cref="ImageException"/> for unknown modules or a cycle.
    /// </summary>
    public IReadOnlyList<string> Closure(IEnumerable<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        var order = new List<string>();
        var state = new Dictionary<string, bool>(StringComparer.Ordinal); // false = visiting, true = done
        foreach (string name in names)
        {
            if (!pathByName.TryGetValue(name.Replace('-', '_'), out string? path))
                ImageException.Throw(ImageError.ModuleNotFound, $"\"{name}\" is not in modules.dep");
            Visit(path, order, state);
        }
        return order;
    }

    void Visit(string path, List<string> order, Dictionary<string, bool> state)
    {
        if (state.TryGetValue(path, out bool done))
        {
            if (!done)
                ImageException.Throw(ImageError.ModuleDependencyCycle, $"\"{path}\" depends on itself");
            return;
        }
        if (!dependenciesByPath.TryGetValue(path, out string[]? deps))
            ImageException.Throw(ImageError.ModuleNotFound, $"dependency \"{path}\" is not in modules.dep");
        state[path] = false;
        for (int i = deps.Length - 1; i >= 0; i--)
            Visit(deps[i], order, state);
        state[path] = true;
        order.Add(path);
    }
}

using System.Text;

namespace Tabula.Machine.Modules;

/// <summary>One line of modules.alias: a glob pattern and the module that handles what it matches.</summary>
public sealed record ModuleAlias(string Pattern, string Module)
{
    /// <summary>
    /// The bus of a device alias ("pci" for <c>pci:v00001AF4d*…</c>, "acpi" for <c>acpi*:LNRO0005:*</c>), or null for
    /// an alias that names no device: file systems, protocols, netlink families (<c>fs-…</c>, <c>net-pf-…</c>,
    /// <c>rtnl-link-wireguard</c>), and the <c>devname:</c>/<c>symbol:</c> entries that no modalias file ever holds.
    /// </summary>
    public string? Bus => Modalias.BusOf(Pattern);
}

/// <summary>
/// modules.alias as depmod writes it: <c>alias PATTERN MODULE</c> per line, '#' comments; PATTERN is a glob as the
/// kernel's MODULE_DEVICE_TABLE macros make them (<c>*</c>, <c>?</c>, <c>[…]</c>), matched against the modalias of a
/// device (<see cref="Modalias.Matches"/>). Read by the image builder and by PID 1's coldplug.
/// </summary>
public sealed class ModuleAliases
{
    ModuleAliases(IReadOnlyList<ModuleAlias> entries) => Entries = entries;

    /// <summary>No aliases (a module tree without modules.alias).</summary>
    public static ModuleAliases Empty { get; } = new([]);

    /// <summary>Every alias in file order.</summary>
    public IReadOnlyList<ModuleAlias> Entries { get; }

    /// <summary>
    /// Parses modules.alias bytes with the limits of <see cref="ModuleDependencies.Parse(ReadOnlyMemory{byte})"/>.
    /// Module names are normalised as modprobe does ('-' read as '_'). Throws <see cref="ModuleIndexException"/>.
    /// </summary>
    public static ModuleAliases Parse(ReadOnlyMemory<byte> bytes)
    {
        var entries = new List<ModuleAlias>();
        int number = 0;
        foreach (string line in ModuleIndexText.Lines(bytes, "modules.alias"))
        {
            number++;
            if (line.Length == 0 || line[0] == '#')
                continue;
            string[] fields = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields is not ["alias", var pattern, var module])
            {
                ModuleIndexException.Throw(ModuleIndexError.AliasMalformed, $"modules.alias line {number}: not \"alias PATTERN MODULE\"");
                return Empty;
            }
            if (!Modalias.IsValidPattern(pattern))
                ModuleIndexException.Throw(ModuleIndexError.AliasMalformed, $"modules.alias line {number}: unclosed '[' in the pattern");
            entries.Add(new ModuleAlias(pattern, module.Replace('-', '_')));
        }
        return new ModuleAliases(entries);
    }

    /// <summary>Parses modules.alias text.</summary>
    public static ModuleAliases Parse(string text) => Parse(Encoding.UTF8.GetBytes(text));

    /// <summary>Reads and parses a modules.alias file; a missing file is <see cref="Empty"/>.</summary>
    public static ModuleAliases Load(string path) => File.Exists(path) ? Parse(ModuleIndexText.ReadFile(path)) : Empty;

    /// <summary>The modules with at least one device alias (<see cref="ModuleAlias.Bus"/> not null).</summary>
    public IReadOnlySet<string> DeviceModules() => Entries.Where(e => e.Bus is not null).Select(e => e.Module).ToHashSet(StringComparer.Ordinal);

    /// <summary>The modules one of whose aliases matches <paramref name="modalias"/>, in file order, each once.</summary>
    public IEnumerable<string> Match(string modalias) =>
        Entries.Where(e => e.Bus is not null && Modalias.Matches(e.Pattern, modalias)).Select(e => e.Module).Distinct(StringComparer.Ordinal);

    /// <summary>Writes the aliases of <paramref name="modules"/> (names as modprobe sees them) as modules.alias text.</summary>
    public string Subset(IReadOnlySet<string> modules)
    {
        var text = new StringBuilder("# Aliases of the modules in this image (from depmod's modules.alias), read by PID 1's coldplug.\n");
        foreach (var entry in Entries.Where(e => modules.Contains(e.Module)))
            text.Append("alias ").Append(entry.Pattern).Append(' ').Append(entry.Module).Append('\n');
        return text.ToString();
    }
}

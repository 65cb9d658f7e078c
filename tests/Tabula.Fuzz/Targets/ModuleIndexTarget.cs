using Tabula.Machine.Modules;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// The kernel module index PID 1 reads from its image, one input for the three parsers: the bytes as modules.dep, as
/// modules.alias, and their first line as a device's modalias matched against every alias pattern. Accepted
/// modules.dep gives closures that end in the module asked for with every dependency before its dependant; accepted
/// modules.alias writes a subset that parses to the same entries; a modalias matches itself and "*"-prefixed copies.
/// </summary>
public static class ModuleIndexTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        var bytes = input.ToArray();
        bool accepted = false;
        try
        {
            var deps = ModuleDependencies.Parse(bytes);
            accepted = true;
            foreach (string path in deps.Paths.Take(32))
            {
                IReadOnlyList<string> order;
                try { order = deps.Closure([ModuleDependencies.NameOf(path)]); }
                catch (ModuleIndexException) { continue; }
                FuzzFinding.Check(order.Count == order.Distinct(StringComparer.Ordinal).Count(), "modules.dep: a module twice in a closure", input);
                string? last = deps.PathOf(ModuleDependencies.NameOf(path));
                FuzzFinding.Check(order[^1] == last, "modules.dep: a closure does not end in its module", input);
                for (int i = 0; i < order.Count; i++)
                    foreach (string dependency in deps.DependenciesOf(order[i]))
                        FuzzFinding.Check(order.Take(i).Contains(dependency), "modules.dep: a dependency after its dependant", input);
            }
        }
        catch (ModuleIndexException) { }

        ModuleAliases? aliases = null;
        try
        {
            aliases = ModuleAliases.Parse(bytes);
            accepted = true;
            var again = ModuleAliases.Parse(System.Text.Encoding.UTF8.GetBytes(aliases.Subset(aliases.Entries.Select(e => e.Module).ToHashSet(StringComparer.Ordinal))));
            FuzzFinding.Check(again.Entries.SequenceEqual(aliases.Entries), "modules.alias: written subset parses to other entries", input);
        }
        catch (ModuleIndexException) { }

        int newline = input.IndexOf((byte)'\n');
        try
        {
            string modalias = Modalias.Parse(newline < 0 ? input : input[..newline]);
            accepted = true;
            FuzzFinding.Check(Modalias.Matches(modalias, modalias), "modalias: does not match itself", input);
            FuzzFinding.Check(Modalias.Matches("*" + modalias[^1..], modalias), "modalias: a '*' prefix does not match", input);
            FuzzFinding.Check(Modalias.BusOf(modalias) is null || modalias.StartsWith(Modalias.BusOf(modalias)!, StringComparison.Ordinal), "modalias: bus is not its prefix", input);
            foreach (var alias in aliases?.Entries.Take(256) ?? [])
            {
                bool matches = Modalias.Matches(alias.Pattern, modalias);
                if (alias.Pattern.AsSpan().IndexOfAny('*', '?', '[') < 0)
                    FuzzFinding.Check(matches == (alias.Pattern == modalias), "modalias: a literal pattern matched another text", input);
            }
        }
        catch (ModuleIndexException) { }
        return accepted;
    }
}

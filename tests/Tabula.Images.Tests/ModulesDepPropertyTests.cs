using CsCheck;
using Tabula.Images.KernelModules;

namespace Tabula.Images.Tests;

/// <summary>modules.dep text from anywhere gives a closure or an <see cref="ImageException"/>, nothing else.</summary>
public sealed class ModulesDepPropertyTests
{
    [Fact]
    public void Arbitrary_modules_dep_text_gives_a_closure_or_a_typed_error()
    {
        var line = Gen.Select(Gen.Int[0, 5], Gen.Int[0, 5].Array[0, 4], Gen.Bool)
            .Select((module, deps, colon) => colon
                ? $"m{module}.ko.xz: {string.Join(' ', deps.Select(d => $"m{d}.ko.xz"))}"
                : $"m{module}.ko.xz");
        Gen.Select(line.Array[0, 8], Gen.Int[0, 5]).Sample((lines, wanted) =>
        {
            try
            {
                var deps = ModuleDependencies.Parse(new StringReader(string.Join('\n', lines)));
                IReadOnlyList<string> order = deps.Closure([$"m{wanted}"]);
                Assert.Equal(order.Count, order.Distinct().Count());
                Assert.Equal($"m{wanted}", ModuleDependencies.NameOf(order[^1]));
            }
            catch (ImageException) { }
        }, iter: 5_000);
    }
}

namespace Tabula.Fuzz.Tests;

/// <summary>The checked-in seed corpus, tests/Tabula.Fuzz/corpus/&lt;target&gt;/, read from the repository.</summary>
internal static class Corpus
{
    /// <summary>A seed larger than this slows afl down and belongs in a parser's own tests instead.</summary>
    public const int MaxSeedBytes = 64 * 1024;

    public static string RepositoryRoot { get; } = FindRoot();

    public static string DirectoryOf(FuzzTarget target) => Path.Combine(RepositoryRoot, "tests", "Tabula.Fuzz", "corpus", target.ToString());

    /// <summary>Every seed of <paramref name="target"/> by file name, in name order; empty when it has none.</summary>
    public static IReadOnlyList<(string Name, byte[] Bytes)> Of(FuzzTarget target)
    {
        string directory = DirectoryOf(target);
        if (!Directory.Exists(directory))
            return [];
        return [.. Directory.EnumerateFiles(directory).Order(StringComparer.Ordinal).Select(f => (Path.GetFileName(f), File.ReadAllBytes(f)))];
    }

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Tabula.slnx")))
                return dir.FullName;
        throw new InvalidOperationException("cannot find the repository root (Tabula.slnx) above " + AppContext.BaseDirectory);
    }
}

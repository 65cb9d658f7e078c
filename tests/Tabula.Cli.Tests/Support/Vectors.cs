namespace Tabula.Cli.Tests;

/// <summary>Upstream conformance data in tests/vectors (see its README for the expected outcomes).</summary>
public static class Vectors
{
    public static string PathOf(string relative) => Path.Combine(Tabula.RepositoryRoot, "tests", "vectors", "st-upstream", relative);
}

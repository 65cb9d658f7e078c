using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Tabula.Packaging.Tests;

public sealed partial class VectorIntegrityTests
{
    [GeneratedRegex(@"^([0-9a-f]{64})  (\S+)$", RegexOptions.Multiline)]
    private static partial Regex SumLine();

    [Fact]
    public void Every_vector_file_matches_the_sha256_listed_upstream()
    {
        string readme = File.ReadAllText(Vectors.PathOf("st-upstream/README.md"));
        var sums = SumLine().Matches(readme);
        Assert.True(sums.Count >= 20, $"expected the README to list the vector sums, found {sums.Count}");
        foreach (Match sum in sums)
        {
            byte[] bytes = Vectors.Read("st-upstream/" + sum.Groups[2].Value);
            Assert.Equal(sum.Groups[1].Value, Convert.ToHexStringLower(SHA256.HashData(bytes)));
        }
    }
}

namespace Tabula.Packaging;

/// <summary>
/// What a package must satisfy: signers chaining to one of <paramref name="Roots"/>, at least
/// <paramref name="Threshold"/> distinct signing keys, and, when <paramref name="Sigsum"/> is set,
/// a Sigsum proof for every signature that counts.
/// </summary>
public sealed record VerificationPolicy(IReadOnlyList<Certificate> Roots, int Threshold, SigsumPolicy? Sigsum = null)
{
    /// <summary>Validated roots and threshold.</summary>
    public IReadOnlyList<Certificate> Roots { get; } = Roots.Count > 0 ? Roots
        : throw new ArgumentException("at least one signing root is needed", nameof(Roots));

    /// <summary>Threshold, at least 1.</summary>
    public int Threshold { get; } = Threshold >= 1 ? Threshold
        : throw new ArgumentOutOfRangeException(nameof(Threshold), "the signature threshold must be at least 1");

    /// <summary>Reads an ST trust policy folder (see <see cref="TrustPolicyFolder"/>).</summary>
    public static VerificationPolicy FromTrustPolicyDirectory(string directory) =>
        TrustPolicyFolder.Load(directory).ToVerificationPolicy();
}

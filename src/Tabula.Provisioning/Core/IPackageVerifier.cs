using Tabula.Packaging;

namespace Tabula.Provisioning.Core;

/// <summary>
/// Decides whether an uploaded package meets the server's trust policy. The seam between the server and
/// Tabula.Packaging: the production implementation (<see cref="TrustPolicyVerifier"/>) counts distinct valid
/// signers against the policy's threshold. There is deliberately no implementation that accepts everything.
/// </summary>
public interface IPackageVerifier
{
    /// <summary>The policy's threshold, reported when a descriptor carries no signature at all (refused before
    /// its archive is read).</summary>
    int RequiredSignatures { get; }

    /// <summary>Verifies <paramref name="descriptorJson"/>'s signatures over <paramref name="archive"/>.</summary>
    /// <exception cref="ProvisioningException"><see cref="ProvisioningError.MalformedDescriptor"/> when the
    /// descriptor cannot be parsed.</exception>
    PackageVerdict Verify(ReadOnlySpan<byte> descriptorJson, Sha256Digest archive, DateTimeOffset at);
}

/// <summary>One signature's outcome: its index in the descriptor and, when it did not count, why.</summary>
public sealed record SignatureVerdict(int Index, bool Valid, string? Reason);

/// <summary>The verifier's answer, in stboot's terms ("N found, N valid, N required").</summary>
public sealed record PackageVerdict(bool Accepted, int Found, int Valid, int Required,
    IReadOnlyList<SignatureVerdict> Signatures);

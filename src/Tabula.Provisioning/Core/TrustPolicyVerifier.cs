using Tabula.Packaging;

namespace Tabula.Provisioning.Core;

/// <summary>
/// The production verifier: Tabula.Packaging's <see cref="PackageVerifier"/> (distinct Ed25519 signers chaining to
/// the policy's roots, Sigsum proofs when the policy has them) against an ST trust policy folder loaded once at
/// start. The server uses the same rules as stboot, so a package the server accepts is one machines will boot.
/// </summary>
public sealed class TrustPolicyVerifier(VerificationPolicy policy) : IPackageVerifier
{
    public int RequiredSignatures => policy.Threshold;

    /// <summary>Loads an ST trust policy folder; a missing or invalid file is a configuration error.</summary>
    public static TrustPolicyVerifier FromDirectory(string directory)
    {
        try
        {
            return new TrustPolicyVerifier(VerificationPolicy.FromTrustPolicyDirectory(directory));
        }
        catch (Exception e) when (e is PackageFormatException or IOException or UnauthorizedAccessException
                                      or ArgumentException)
        {
            throw new Hosting.ProvisioningConfigException($"trust policy {directory}: {e.Message}", e);
        }
    }

    public PackageVerdict Verify(ReadOnlySpan<byte> descriptorJson, Sha256Digest archive, DateTimeOffset at)
    {
        var result = PackageVerifier.Verify(ParseDescriptor(descriptorJson), archive.Bytes, policy, at);
        return new PackageVerdict(result.Accepted, result.Found, result.Valid, result.Required,
            result.Checks.Select(c => new SignatureVerdict(c.Index, c.Valid, c.Valid ? null : c.Reason)).ToArray());
    }

    /// <summary>Parses a descriptor with the packaging library's rules, as a provisioning error when malformed.</summary>
    public static Descriptor ParseDescriptor(ReadOnlySpan<byte> json)
    {
        try
        {
            return Descriptor.Parse(json);
        }
        catch (PackageFormatException e)
        {
            throw new ProvisioningException(ProvisioningError.MalformedDescriptor, e.Message, e);
        }
    }
}

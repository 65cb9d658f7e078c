using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Tabula.Attestation;

/// <summary>
/// Step <see cref="AttestationStep.EkCertificate"/>: the EK certificate (DER, as read from the TPM's NV index) chains to
/// one of the configured manufacturer roots, with the roots as the only trust anchors (never the system store), at the
/// given time, revocation not checked (a lab CA publishes no CRL; a real vendor's would be configured with its roots).
/// Intermediates the vendor uses go into the roots file too, marked as extra chain elements, not anchors: only
/// self-signed certificates in it anchor.
/// </summary>
public static class EkCertificateCheck
{
    /// <summary>Reads a PEM bundle of manufacturer roots (and intermediates). Throws <see cref="CryptographicException"/> on
    /// bad PEM; an empty bundle is an <see cref="ArgumentException"/>.</summary>
    public static X509Certificate2Collection ReadRoots(string pem)
    {
        var roots = new X509Certificate2Collection();
        roots.ImportFromPem(pem);
        return roots.Count > 0 ? roots : throw new ArgumentException("the TPM manufacturer roots file holds no certificate");
    }

    /// <summary>Checks <paramref name="ekCertificateDer"/>; on success <paramref name="ek"/> is the parsed certificate
    /// (the caller disposes it) whose key the activation challenge is made with.</summary>
    public static StepResult Check(ReadOnlySpan<byte> ekCertificateDer, X509Certificate2Collection roots, DateTimeOffset at,
        out X509Certificate2? ek)
    {
        ek = null;
        X509Certificate2 certificate;
        try { certificate = X509CertificateLoader.LoadCertificate(ekCertificateDer); }
        catch (CryptographicException e)
        {
            return StepResult.Fail(AttestationStep.EkCertificate, "the EK certificate does not parse: " + e.Message);
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = at.UtcDateTime;
        chain.ChainPolicy.VerificationTimeIgnored = false;
        // The TCG EK profile certifies an RSA key for key encipherment with TCG policy OIDs: the signature chain is what counts.
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.IgnoreWrongUsage | X509VerificationFlags.IgnoreInvalidPolicy;
        foreach (var root in roots)
        {
            if (root.SubjectName.RawData.AsSpan().SequenceEqual(root.IssuerName.RawData)) chain.ChainPolicy.CustomTrustStore.Add(root);
            else chain.ChainPolicy.ExtraStore.Add(root);
        }
        // EK certificates carry the TCG's subjectAltName (TPM manufacturer, model, version) and often an empty subject;
        // OpenSSL accepts both. What must hold is the chain itself.
        bool built = chain.Build(certificate);
        var anchor = chain.ChainElements.Count > 0 ? chain.ChainElements[^1].Certificate : null;
        if (!built || anchor is null || !chain.ChainPolicy.CustomTrustStore.Contains(anchor))
        {
            string why = string.Join("; ", chain.ChainStatus.Select(s => s.Status.ToString()).Distinct());
            certificate.Dispose();
            return StepResult.Fail(AttestationStep.EkCertificate,
                $"the EK certificate does not chain to a configured TPM manufacturer root ({(why.Length > 0 ? why : "no chain")})");
        }
        ek = certificate;
        return StepResult.Pass(AttestationStep.EkCertificate, $"issued by {certificate.Issuer}, chains to {anchor.Subject}");
    }
}

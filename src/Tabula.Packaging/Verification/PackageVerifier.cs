using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using Tabula.Packaging.Crypto;

namespace Tabula.Packaging;

/// <summary>
/// Counts independent signers of an OS package archive (ST rules, formats reference §1.3–1.5, §9):
/// for each (certificate, signature) entry, in order,
/// 1. the certificate is base64 of PEM and parses (DER entries are rejected);
/// 2. it is a root, or is issued and signed by one (no intermediates), both valid at the given
///    time, with Go's EKU rule;
/// 3. its key is Ed25519 and the signature verifies over the 32-byte SHA-256 of the archive
///    (with a Sigsum policy: the entry must be a Sigsum proof that verifies instead);
/// 4. a key is counted once, and only after its signature verified.
/// Bad entries are skipped with a reason; the package is accepted iff valid ≥ threshold.
/// </summary>
public static class PackageVerifier
{
    /// <summary>Verifies <paramref name="descriptor"/> against the archive digest.</summary>
    public static VerifyResult Verify(Descriptor descriptor, ReadOnlySpan<byte> archiveSha256, VerificationPolicy policy, DateTimeOffset at)
    {
        if (archiveSha256.Length != SHA256.HashSizeInBytes)
            throw new ArgumentException("the archive digest is 32 bytes", nameof(archiveSha256));
        var checks = new List<SignatureCheck>(descriptor.Count);
        var counted = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < descriptor.Count; i++)
        {
            var check = CheckEntry(i, descriptor.Certificates[i], descriptor.Signatures[i], archiveSha256, policy, at);
            if (check.Valid && !counted.Add(check.SignerKeySha256!))
                check = check with { Rejection = SignatureRejection.DuplicateSignerKey, Reason = "this key's signature was already counted" };
            checks.Add(check);
        }
        return new VerifyResult(Hex.Encode(archiveSha256), descriptor.Count, counted.Count, policy.Threshold, checks);
    }

    /// <summary>
    /// SHA-256 of a stream, read in 1 MiB blocks (the archive is hashed once, as it is read).
    /// A seekable stream longer than <see cref="Limits.MaxArchiveBytes"/> is refused before any byte is read.
    /// </summary>
    public static byte[] HashArchive(Stream archive)
    {
        if (archive.CanSeek)
            PackageFormatException.ThrowIfTooLarge(archive.Length - archive.Position, Limits.MaxArchiveBytes, "OS package archive");
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            long total = 0;
            int read;
            while ((read = archive.Read(buffer)) > 0)
            {
                total += read;
                PackageFormatException.ThrowIfTooLarge(total, Limits.MaxArchiveBytes, "OS package archive");
                hash.AppendData(buffer, 0, read);
            }
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
        return hash.GetHashAndReset();
    }

    private static SignatureCheck CheckEntry(int index, string certificateEntry, string signatureEntry,
        ReadOnlySpan<byte> digest, VerificationPolicy policy, DateTimeOffset at)
    {
        SignatureCheck Reject(SignatureRejection why, string reason, string? key = null) => new(index, why, reason, key);

        // 1. Certificate: base64 of PEM text.
        byte[] pemBytes;
        try { pemBytes = Convert.FromBase64String(certificateEntry); }
        catch (FormatException) { return Reject(SignatureRejection.CertificateNotBase64, "certificate entry is not base64"); }
        if (!pemBytes.AsSpan().TrimStart("\r\n\t "u8).StartsWith("-----BEGIN "u8))
            return Reject(SignatureRejection.CertificateNotPem, "certificate entry is not PEM (DER and other encodings are refused)");
        Certificate leaf;
        try
        {
            var blocks = Pem.ReadAll(pemBytes);
            var first = blocks.Count > 0 ? blocks[0] : null;
            if (first is null || first.Label != "CERTIFICATE")
                return Reject(SignatureRejection.CertificateUnparsable, "certificate entry's first PEM block is not a CERTIFICATE");
            leaf = Certificate.Parse(first.Der);
        }
        catch (PackageFormatException e) { return Reject(SignatureRejection.CertificateUnparsable, $"certificate does not parse: {e.Message}"); }
        string keyId = leaf.PublicKeySha256Hex;

        // 2. Chain: the leaf is a root, or a root issued and signed it.
        Certificate? root = null;
        foreach (var candidate in policy.Roots)
            if (candidate.Der.AsSpan().SequenceEqual(leaf.Der)) { root = candidate; break; }
        if (root is null)
            foreach (var candidate in policy.Roots)
                if (candidate.Subject.Span.SequenceEqual(leaf.Issuer.Span) && CertificateSignature.IsSignedBy(leaf, candidate)) { root = candidate; break; }
        if (root is null)
            return Reject(SignatureRejection.NotIssuedByRoot, "certificate is not a trusted root nor signed by one", keyId);
        if (!leaf.IsValidAt(at))
            return Reject(SignatureRejection.CertificateNotValidAtTime, $"certificate is valid {Stamp(leaf.NotBefore)} … {Stamp(leaf.NotAfter)}, not at {Stamp(at)}", keyId);
        if (!root.IsValidAt(at))
            return Reject(SignatureRejection.CertificateNotValidAtTime, $"root certificate is valid {Stamp(root.NotBefore)} … {Stamp(root.NotAfter)}, not at {Stamp(at)}", keyId);
        if (!leaf.PermitsServerAuth || !root.PermitsServerAuth)
            return Reject(SignatureRejection.IncompatibleKeyUsage, "extended key usage lacks serverAuth and any (stboot rejects such chains)", keyId);
        if (!leaf.HasEd25519Key)
            return Reject(SignatureRejection.NotEd25519, $"signer key is not Ed25519 (algorithm {leaf.PublicKeyAlgorithm})", keyId);

        // 3. Signature (or Sigsum proof) over SHA-256 of the archive.
        byte[] signature;
        try { signature = Convert.FromBase64String(signatureEntry); }
        catch (FormatException) { return Reject(SignatureRejection.SignatureNotBase64, "signature entry is not base64", keyId); }
        bool isProof = SigsumProof.LooksLikeProof(signature);
        if (policy.Sigsum is { } sigsum)
        {
            if (!isProof)
                return Reject(SignatureRejection.SigsumProofRequired, "a Sigsum policy is configured but this entry is a bare signature", keyId);
            string? failure;
            try { failure = SigsumVerifier.Verify(SigsumProof.Parse(signature), digest, leaf.PublicKey, sigsum); }
            catch (PackageFormatException e) { failure = e.Message; }
            return failure is null
                ? new SignatureCheck(index, null, "valid (Sigsum proof verified)", keyId)
                : Reject(SignatureRejection.SigsumProofInvalid, failure, keyId);
        }
        if (isProof)
            return Reject(SignatureRejection.SigsumPolicyMissing, "entry is a Sigsum proof but no Sigsum policy is configured", keyId);
        if (signature.Length != Ed25519.SignatureSize)
            return Reject(SignatureRejection.SignatureInvalid, $"signature is {signature.Length} bytes, not 64", keyId);
        return Ed25519.Verify(leaf.PublicKey, digest, signature)
            ? new SignatureCheck(index, null, "valid", keyId)
            : Reject(SignatureRejection.SignatureInvalid, "signature does not verify over SHA-256 of the archive", keyId);
    }

    private static string Stamp(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
}

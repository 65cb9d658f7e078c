using Tabula.Packaging;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// One DER certificate, and the same bytes as certificates concatenated (<c>Certificate.ParseDerConcatenation</c>, the
/// measured TLS and signing roots). An accepted one, written as PEM and read back as a bundle, gives the same fields; its
/// derived properties (key hash, EKU rule, validity) do not throw.
/// </summary>
public static class CertificateTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        // The same bytes as stboot's measured roots (DER certificates back to back): what is accepted is the input, cut at
        // certificate boundaries.
        IReadOnlyList<Certificate>? concatenated;
        try { concatenated = Certificate.ParseDerConcatenation(input); }
        catch (PackageFormatException) { concatenated = null; }
        if (concatenated is not null)
            FuzzFinding.Check(input.SequenceEqual(concatenated.SelectMany(c => c.Der).ToArray()), "concatenated certificates: the parts are not the input", input);

        Certificate certificate;
        try { certificate = Certificate.Parse(input); }
        catch (PackageFormatException) { return false; }
        FuzzFinding.Check(concatenated is { Count: 1 }, "certificate: one certificate is not read as a concatenation of one", input);

        FuzzFinding.Check(input.SequenceEqual(certificate.Der), "certificate: Der is not the input", input);
        var again = Certificate.ParsePemBundle(System.Text.Encoding.ASCII.GetBytes(Pem.EncodeCertificate(certificate.Der))).Single();
        FuzzFinding.Check(again.Subject.Span.SequenceEqual(certificate.Subject.Span)
            && again.Issuer.Span.SequenceEqual(certificate.Issuer.Span)
            && again.SerialNumber.AsSpan().SequenceEqual(certificate.SerialNumber)
            && again.NotBefore == certificate.NotBefore && again.NotAfter == certificate.NotAfter
            && again.PublicKey.AsSpan().SequenceEqual(certificate.PublicKey)
            && again.Signature.AsSpan().SequenceEqual(certificate.Signature)
            && again.CommonName == certificate.CommonName
            && again.KeyUsage == certificate.KeyUsage
            && again.IsCertificateAuthority == certificate.IsCertificateAuthority,
            "certificate: DER → PEM → parse changed it", input);
        FuzzFinding.Check(input.IndexOf(certificate.TbsCertificate.Span) > 0, "certificate: TBS bytes are not inside the input", input);
        _ = certificate.PublicKeySha256Hex;
        _ = certificate.PermitsServerAuth;
        _ = certificate.HasEd25519Key;
        _ = certificate.IsValidAt(DateTimeOffset.UnixEpoch);
        return true;
    }
}

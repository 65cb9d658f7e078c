namespace Tabula.Images.Uefi;

/// <summary>
/// Signs a UKI for Secure Boot with the operator's db key: an Authenticode signature (PKCS#7, SHA-256) in the PE
/// certificate table, made by Debian's sbsigntool (sbsign), then checked with sbverify against the certificate.
/// The firmware checks it against db; the stub's own SBAT entries stay in .sbat.
/// </summary>
public static class UkiSigner
{
    /// <summary>Returns <paramref name="uki"/> signed with the PEM key and certificate given.</summary>
    public static byte[] Sign(byte[] uki, string keyPem, string certificatePem)
    {
        ArgumentNullException.ThrowIfNull(uki);
        UkiImage.Read(uki);
        foreach (string file in new[] { keyPem, certificatePem })
            if (!File.Exists(file))
                ImageException.Throw(ImageError.InputInvalid, $"{file}: not found");
        string work = Directory.CreateTempSubdirectory("tabula-sign-").FullName;
        try
        {
            string unsigned = Path.Combine(work, "uki.efi"), signedPath = Path.Combine(work, "uki.signed.efi");
            File.WriteAllBytes(unsigned, uki);
            BuildTool.Run("sbsign", "sbsigntool", "--key", keyPem, "--cert", certificatePem, "--output", signedPath, unsigned);
            BuildTool.Run("sbverify", "sbsigntool", "--cert", certificatePem, signedPath);
            byte[] signedBytes = File.ReadAllBytes(signedPath);
            var image = PeImage.Parse(signedBytes, "signed UKI");
            if (image.CertificateTable.Size == 0)
                ImageException.Throw(ImageError.ToolFailed, "sbsign wrote no certificate table");
            return signedBytes;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}

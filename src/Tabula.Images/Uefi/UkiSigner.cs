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

    /// <summary>
    /// Returns the kernel <paramref name="kernel"/> (a bzImage with its EFI stub, a PE/COFF image) signed with the PEM key and
    /// certificate given, any signature it carried (Debian's) removed first (sbattach --remove). What an operator does so that,
    /// under Secure Boot, stboot's kexec_file_load of their kernel passes lockdown: the kernel trusts the db certificates
    /// (its platform keyring), so a kernel signed with the db key loads (docs/boot.md "Secure Boot").
    /// </summary>
    public static byte[] SignKernel(byte[] kernel, string keyPem, string certificatePem)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        var image = PeImage.Parse(kernel, "kernel");
        foreach (string file in new[] { keyPem, certificatePem })
            if (!File.Exists(file))
                ImageException.Throw(ImageError.InputInvalid, $"{file}: not found");
        string work = Directory.CreateTempSubdirectory("tabula-sign-").FullName;
        try
        {
            string unsigned = Path.Combine(work, "vmlinuz"), signedPath = Path.Combine(work, "vmlinuz.signed");
            File.WriteAllBytes(unsigned, kernel);
            if (image.CertificateTable.Size != 0)
                BuildTool.Run("sbattach", "sbsigntool", "--remove", unsigned);
            BuildTool.Run("sbsign", "sbsigntool", "--key", keyPem, "--cert", certificatePem, "--output", signedPath, unsigned);
            BuildTool.Run("sbverify", "sbsigntool", "--cert", certificatePem, signedPath);
            return File.ReadAllBytes(signedPath);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}

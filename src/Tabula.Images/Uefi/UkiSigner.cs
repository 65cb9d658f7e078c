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
        byte[] signedBytes = SignPe(uki, "uki.efi", removeSignatures: false, keyPem, certificatePem);
        if (PeImage.Parse(signedBytes, "signed UKI").CertificateTable.Size == 0)
            ImageException.Throw(ImageError.ToolFailed, "sbsign wrote no certificate table");
        return signedBytes;
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
        return SignPe(kernel, "vmlinuz", removeSignatures: image.CertificateTable.Size != 0, keyPem, certificatePem);
    }

    /// <summary>sbsign (after sbattach --remove when asked), then sbverify against the certificate, in a temporary folder.</summary>
    static byte[] SignPe(byte[] pe, string name, bool removeSignatures, string keyPem, string certificatePem)
    {
        foreach (string file in new[] { keyPem, certificatePem })
            if (!File.Exists(file))
                ImageException.Throw(ImageError.InputInvalid, $"{file}: not found");
        string work = Directory.CreateTempSubdirectory("tabula-sign-").FullName;
        try
        {
            string unsigned = Path.Combine(work, name), signedPath = Path.Combine(work, name + ".signed");
            File.WriteAllBytes(unsigned, pe);
            if (removeSignatures)
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

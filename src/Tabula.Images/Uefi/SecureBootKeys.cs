using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Tabula.Images.Uefi;

/// <summary>
/// An operator's own Secure Boot keys (UEFI 2.10 §32.3): the platform key PK (who may change KEK), the key exchange key
/// KEK (who may change db and dbx) and db (whose certificate lets an EFI program run: the key that signs the UKI). Each
/// is an RSA-2048 key with a self-signed certificate, the type every UEFI firmware must accept; written as NAME.key
/// (PKCS#8 PEM, 0600) and NAME.crt (PEM) in one folder.
/// </summary>
public static class SecureBootKeys
{
    /// <summary>The three keys, in the order they are enrolled.</summary>
    public static readonly IReadOnlyList<string> Names = ["PK", "KEK", "db"];

    /// <summary>EFI_GLOBAL_VARIABLE: the vendor of PK and KEK (and SecureBoot, SetupMode).</summary>
    public static readonly Guid GlobalVariable = new("8be4df61-93ca-11d2-aa0d-00e098032b8c");

    /// <summary>EFI_IMAGE_SECURITY_DATABASE_GUID: the vendor of db and dbx.</summary>
    public static readonly Guid ImageSecurityDatabase = new("d719b2cb-3d3a-4596-a3bc-dad00e67656f");

    /// <summary>EFI_CERT_X509_GUID: a signature list of DER X.509 certificates.</summary>
    public static readonly Guid CertX509 = new("a5c059a1-94e4-4aa7-87b5-ab155c2bf072");

    /// <summary>EDK2's gEfiSecureBootEnableDisableGuid: OVMF's SecureBootEnable switch (1 = on once PK is enrolled).</summary>
    public static readonly Guid SecureBootEnableDisable = new("f0a30bc7-af08-4556-99c4-001009c93a44");

    /// <summary>Creates PK, KEK and db in <paramref name="directory"/> (refuses to overwrite). <paramref name="owner"/> names them in their subjects.</summary>
    public static void Create(string directory, string owner, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        Directory.CreateDirectory(directory);
        foreach (string name in Names)
        {
            string key = Path.Combine(directory, name + ".key"), crt = Path.Combine(directory, name + ".crt");
            if (File.Exists(key) || File.Exists(crt))
                ImageException.Throw(ImageError.InputInvalid, $"{key} or {crt} exists already");
            using var rsa = RSA.Create(2048);
            var request = new CertificateRequest($"CN={owner} Secure Boot {name}", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
            request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
            using var certificate = request.CreateSelfSigned(notBefore, notAfter);
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            using (var stream = new FileStream(key, options))
            using (var writer = new StreamWriter(stream))
                writer.Write(rsa.ExportPkcs8PrivateKeyPem());
            File.WriteAllText(crt, certificate.ExportCertificatePem());
        }
    }

    /// <summary>An EFI_SIGNATURE_LIST of one X.509 certificate (DER) owned by <paramref name="owner"/>: what PK, KEK and db hold.</summary>
    public static byte[] SignatureList(byte[] certificateDer, Guid owner)
    {
        ArgumentNullException.ThrowIfNull(certificateDer);
        const int listHeader = 16 + 4 + 4 + 4;
        int signatureSize = 16 + certificateDer.Length;
        byte[] list = new byte[listHeader + signatureSize];
        CertX509.TryWriteBytes(list);
        BinaryPrimitives.WriteUInt32LittleEndian(list.AsSpan(16), (uint)list.Length);   // SignatureListSize
        BinaryPrimitives.WriteUInt32LittleEndian(list.AsSpan(20), 0);                    // SignatureHeaderSize
        BinaryPrimitives.WriteUInt32LittleEndian(list.AsSpan(24), (uint)signatureSize);  // SignatureSize
        owner.TryWriteBytes(list.AsSpan(listHeader));
        certificateDer.CopyTo(list.AsSpan(listHeader + 16));
        return list;
    }

    /// <summary>
    /// Enrolls the certificates of <paramref name="directory"/> (PK.crt, KEK.crt, db.crt) into <paramref name="store"/>
    /// as the firmware stores them after authenticated writes: time-based authenticated, non-volatile, boot and runtime
    /// access, timestamp <paramref name="at"/>, data the signature list (the EFI_VARIABLE_AUTHENTICATION_2 of a
    /// SetVariable call is not stored). SecureBootEnable = 1 (OVMF's switch). With a PK the firmware leaves setup mode
    /// and, with the Secure Boot build, checks every EFI program against db.
    /// </summary>
    public static void Enroll(OvmfVariableStore store, string directory, Guid owner, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(store);
        var time = EfiTime.From(at);
        foreach (string name in Names)
        {
            string crt = Path.Combine(directory, name + ".crt");
            byte[] der;
            try { der = X509Certificate2.CreateFromPem(File.ReadAllText(crt)).RawData; }
            catch (Exception e) when (e is IOException or CryptographicException or UnauthorizedAccessException)
            {
                ImageException.Throw(ImageError.InputInvalid, $"{crt}: {e.Message}", e);
                return;
            }
            store.Set(new FirmwareVariable(name, name == "db" ? ImageSecurityDatabase : GlobalVariable, FirmwareVariable.TimeBasedAuthenticated,
                SignatureList(der, owner)) { TimeStamp = time });
        }
        store.Set(new FirmwareVariable("SecureBootEnable", SecureBootEnableDisable, 0x1 | 0x2, [1]));
    }
}

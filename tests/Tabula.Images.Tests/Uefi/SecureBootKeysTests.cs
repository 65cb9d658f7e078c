using System.Security.Cryptography.X509Certificates;
using Tabula.Images.Uefi;
using Tabula.Testing;

namespace Tabula.Images.Tests.Uefi;

public sealed class SecureBootKeysTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("tabula-sbkeys-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static readonly Guid Owner = new("3b0c3c3e-0f6f-4d5b-9d1e-5461627561aa");

    /// <summary>efitools' cert-to-efi-sig-list, an independent writer, makes the same signature list bytes.</summary>
    [ToolsFact("cert-to-efi-sig-list", "/usr/share/OVMF/OVMF_VARS_4M.fd")]
    public void Keys_are_created_and_enrolled_as_efitools_signature_lists_in_the_variable_store()
    {
        string keys = Path.Combine(dir, "keys");
        SecureBootKeys.Create(keys, "Tabula test", DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(10));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(keys, "db.key")));
        Assert.Throws<ImageException>(() => SecureBootKeys.Create(keys, "again", DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddYears(1)));

        string esl = Path.Combine(dir, "db.esl");
        Prerequisites.Run("cert-to-efi-sig-list", "-g", Owner.ToString(), Path.Combine(keys, "db.crt"), esl);
        byte[] der = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(keys, "db.crt"))).RawData;
        Assert.Equal(File.ReadAllBytes(esl), SecureBootKeys.SignatureList(der, Owner));

        var store = OvmfVariableStore.Parse(File.ReadAllBytes("/usr/share/OVMF/OVMF_VARS_4M.fd"));
        var at = new DateTimeOffset(2026, 12, 6, 23, 0, 0, TimeSpan.Zero);
        SecureBootKeys.Enroll(store, keys, Owner, at);
        var enrolled = OvmfVariableStore.Parse(store.ToArray());
        Assert.Equal(["PK", "KEK", "db", "SecureBootEnable"], enrolled.Variables.Select(v => v.Name));
        var db = enrolled.Find("db", SecureBootKeys.ImageSecurityDatabase)!;
        Assert.Equal(File.ReadAllBytes(esl), db.Data);
        Assert.Equal(FirmwareVariable.TimeBasedAuthenticated, db.Attributes);
        Assert.Equal(EfiTime.From(at), db.TimeStamp);
    }
}

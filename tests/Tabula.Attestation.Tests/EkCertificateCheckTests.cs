using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Tabula.Qemu;

namespace Tabula.Attestation.Tests;

/// <summary>Step ek-certificate against the EK certificate of a real swtpm manufactured by the lab CA (read with tpm2_nvread).</summary>
public sealed class EkCertificateCheckTests : IDisposable
{
    readonly string dir = $"/var/tmp/tabula-attest-ek-{Environment.ProcessId}-{RandomNumberGenerator.GetHexString(8, lowercase: true)}";

    public void Dispose()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    byte[] ManufacturedEk(TpmManufacturer manufacturer)
    {
        string state = Path.Combine(dir, "tpm"), ek = Path.Combine(dir, "ek.der");
        Tabula.Qemu.Swtpm.Manufacture(state, manufacturer);
        using var swtpm = Tabula.Qemu.Swtpm.StartServer(state, Path.Combine(dir, "swtpm.log"));
        Prerequisites.Run("tpm2_nvread", "--tcti", swtpm.Tcti, "0x" + Tabula.Qemu.Swtpm.RsaEkCertificateIndex.ToString("x8"), "-o", ek);
        return File.ReadAllBytes(ek);
    }

    [ToolsFact("swtpm", "swtpm_setup", "swtpm_localca", "tpm2_nvread")]
    public void An_ek_certificate_chains_to_its_manufacturer_and_not_to_another_ca()
    {
        var manufacturer = TpmManufacturer.OpenOrCreate(Path.Combine(dir, "ca"));
        byte[] ek = ManufacturedEk(manufacturer);

        var passed = EkCertificateCheck.Check(ek, EkCertificateCheck.ReadRoots(manufacturer.CertificatePem), DateTimeOffset.UtcNow, out var certificate);
        using (certificate)
        {
            Assert.True(passed.Ok, passed.Detail);
            Assert.Equal(AttestationStep.EkCertificate, passed.Name);
            Assert.NotNull(certificate!.GetRSAPublicKey());
        }

        var unknown = TpmManufacturer.OpenOrCreate(Path.Combine(dir, "unknown-ca"), "Some other TPM vendor");
        var failed = EkCertificateCheck.Check(ek, EkCertificateCheck.ReadRoots(unknown.CertificatePem), DateTimeOffset.UtcNow, out var none);
        Assert.False(failed.Ok);
        Assert.Equal(AttestationStep.EkCertificate, failed.Name);
        Assert.Contains("does not chain", failed.Detail);
        Assert.Null(none);

        // The manufacturer's root among others still anchors; garbage bytes are refused at the same step, not thrown.
        var both = EkCertificateCheck.ReadRoots(unknown.CertificatePem + manufacturer.CertificatePem);
        Assert.True(EkCertificateCheck.Check(ek, both, DateTimeOffset.UtcNow, out var again).Ok);
        again?.Dispose();
        var garbage = EkCertificateCheck.Check(ek.AsSpan(0, ek.Length / 2), both, DateTimeOffset.UtcNow, out _);
        Assert.False(garbage.Ok);
        Assert.Contains("does not parse", garbage.Detail);
    }

    [Fact]
    public void A_roots_file_without_a_certificate_is_refused()
    {
        Assert.Throws<ArgumentException>(() => EkCertificateCheck.ReadRoots("nothing here"));
    }
}

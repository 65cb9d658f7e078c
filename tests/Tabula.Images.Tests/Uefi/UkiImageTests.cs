using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Tabula.Images.Uefi;
using Tabula.Testing;

namespace Tabula.Images.Tests.Uefi;

/// <summary>The UKI over Tabula's PE writer, with Debian's systemd EFI stub and guest kernel; objdump, sbverify, mtools
/// and xorriso read what we write (independent readers).</summary>
public sealed class UkiImageTests : IDisposable
{
    const string Stub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
    readonly string dir = Directory.CreateTempSubdirectory("tabula-uki-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static UkiInputs Inputs(byte[]? kernel = null) => new(File.ReadAllBytes(Stub), kernel ?? File.ReadAllBytes(GuestKernel.Require().KernelPath),
        Encoding.ASCII.GetBytes("070701 a pretend initramfs"), "console=ttyS0 panic=-1 -- --rounds=3");

    [GuestKernelFact(false, "objdump", Stub)]
    public void Uki_built_twice_is_the_same_bytes_and_objdump_reads_the_sections_in_st_order()
    {
        byte[] first = UkiImage.Build(Inputs()), second = UkiImage.Build(Inputs());
        Assert.Equal(first, second);

        string path = Path.Combine(dir, "stboot.efi");
        File.WriteAllBytes(path, first);
        string headers = Prerequisites.Run("objdump", "-h", path);
        string[] names = headers.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length > 2 && int.TryParse(f[0], out _)).Select(f => f[1]).ToArray();
        Assert.Equal([".text", ".reloc", ".data", ".dynamic", ".rela", ".dynsym", ".sbat", ".sdmagic", ".osrel", ".cmdline", ".initrd", ".linux"], names);
        Assert.Contains("pei-x86-64", headers);

        var image = PeImage.Parse(first, "UKI");
        Assert.Equal(image.ComputeChecksum(), image.StoredChecksum);
        foreach (var section in image.Sections.Skip(8))
        {
            Assert.Equal(0u, section.VirtualAddress % 4096);
            Assert.Equal(0u, section.RawOffset % image.FileAlignment);
        }
        Assert.True(image.SizeOfImage >= image.Sections[^1].VirtualAddress + image.Sections[^1].VirtualSize);

        var read = UkiImage.Read(first);
        Assert.StartsWith("NAME=\"stboot\"\n", read.OsRelease);
        Assert.Equal("console=ttyS0 panic=-1 -- --rounds=3", read.CommandLine);
        Assert.Equal(new FileInfo(GuestKernel.Require().KernelPath).Length, read.KernelBytes);
        Assert.Contains("systemd,1,The systemd Developers", read.Sbat);
    }

    [ToolsFact(Stub)]
    public void The_pe_checksum_is_the_one_debian_shipped_in_the_stub()
    {
        var stub = PeImage.Parse(File.ReadAllBytes(Stub), "stub");
        Assert.Equal(stub.StoredChecksum, stub.ComputeChecksum());
    }

    [GuestKernelFact(false, Stub)]
    public void Uki_with_a_truncated_or_corrupted_section_is_refused_naming_the_section()
    {
        byte[] uki = UkiImage.Build(Inputs());
        var linux = PeImage.Parse(uki, "UKI").Sections.Single(s => s.Name == ".linux");

        var truncated = Assert.Throws<ImageException>(() => UkiImage.Read(uki[..(uki.Length - 4096)]));
        Assert.Equal(ImageError.PeMalformed, truncated.Reason);
        Assert.Contains("section .linux", truncated.Message);
        Assert.Contains("truncated or corrupted", truncated.Message);

        byte[] corrupted = (byte[])uki.Clone();
        corrupted[linux.RawOffset + 0x202] ^= 0xff;   // "HdrS" of the kernel's setup header
        var bad = Assert.Throws<ImageException>(() => UkiImage.Read(corrupted));
        Assert.Equal(ImageError.UkiSectionInvalid, bad.Reason);
        Assert.StartsWith("UkiSectionInvalid: .linux: no x86 boot setup header", bad.Message);

        byte[] noCmdline = (byte[])uki.Clone();
        var cmdline = PeImage.Parse(uki, "UKI").Sections.Single(s => s.Name == ".cmdline");
        noCmdline[cmdline.RawOffset + 3] = 0;
        Assert.Contains(".cmdline: empty or holds a NUL byte", Assert.Throws<ImageException>(() => UkiImage.Read(noCmdline)).Message);

        // The ISO and the signer read the UKI back first: a corrupted one never reaches the firmware.
        Assert.Equal(ImageError.UkiSectionInvalid, Assert.Throws<ImageException>(() => IsoImage.Write(corrupted, Path.Combine(dir, "x.iso"))).Reason);
        Assert.False(File.Exists(Path.Combine(dir, "x.iso")));
    }

    [GuestKernelFact(false, Stub)]
    public void A_kernel_that_is_not_a_bzimage_or_is_truncated_is_refused_at_build_time()
    {
        byte[] kernel = File.ReadAllBytes(GuestKernel.Require().KernelPath);
        Assert.Contains("kernel: no x86 boot setup header", Assert.Throws<ImageException>(() => UkiImage.Build(Inputs(RandomNumberGenerator.GetBytes(1 << 16)))).Message);
        Assert.Contains("runs past the end", Assert.Throws<ImageException>(() => UkiImage.Build(Inputs(kernel[..(kernel.Length / 2)]))).Message);
        byte[] stub = File.ReadAllBytes(Stub);
        var stubError = Assert.Throws<ImageException>(() => UkiImage.Build(Inputs() with { Stub = stub[..0x8000] }));
        Assert.Equal(ImageError.PeMalformed, stubError.Reason);
        Assert.Contains("EFI stub: section", stubError.Message);
        Assert.Contains("already has a .osrel section", Assert.Throws<ImageException>(() => UkiImage.Build(Inputs() with { Stub = UkiImage.Build(Inputs()) })).Message);
    }

    [GuestKernelFact(false, "xorriso", "mformat", "mcopy", Stub)]
    public void Iso_built_twice_is_the_same_bytes_with_the_uki_as_the_el_torito_uefi_image_and_in_a_gpt_esp()
    {
        byte[] uki = UkiImage.Build(Inputs());
        string first = Path.Combine(dir, "a.iso"), second = Path.Combine(dir, "b.iso");
        IsoImage.Write(uki, first);
        Thread.Sleep(1100);   // a build time that leaked into the image would now differ
        IsoImage.Write(uki, second);
        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(second));

        string report = Prerequisites.Run("sh", "-c", $"xorriso -indev '{first}' -report_el_torito plain -report_system_area plain 2>&1");
        Assert.Contains("Volume id    : 'STBOOT'", report);
        Assert.Matches(@"El Torito boot img :\s+1\s+UEFI\s+y\s+none", report);
        Assert.Contains("GPT", report);

        // The GPT's partition 2 is the ESP; mtools reads the UKI out of it as EFI/BOOT/BOOTX64.EFI.
        byte[] iso = File.ReadAllBytes(first);
        Assert.Equal("EFI PART", Encoding.ASCII.GetString(iso, 512, 8));
        long entries = BinaryPrimitives.ReadInt64LittleEndian(iso.AsSpan(512 + 72)) * 512;
        int entrySize = BinaryPrimitives.ReadInt32LittleEndian(iso.AsSpan(512 + 84));
        var esp = Enumerable.Range(0, 8).Select(i => iso.AsSpan((int)(entries + i * entrySize), entrySize).ToArray())
            .Single(e => new Guid(e.AsSpan(0, 16)) == new Guid("c12a7328-f81f-11d2-ba4b-00a0c93ec93b"));
        long start = BinaryPrimitives.ReadInt64LittleEndian(esp.AsSpan(32)) * 512;
        string extracted = Path.Combine(dir, "BOOTX64.EFI");
        Prerequisites.Run("mcopy", "-n", "-i", $"{first}@@{start}", "::/EFI/BOOT/BOOTX64.EFI", extracted);
        Assert.Equal(uki, File.ReadAllBytes(extracted));
    }

    [GuestKernelFact(false, "sbsign", "sbverify", Stub)]
    public void Signed_uki_verifies_with_its_certificate_and_not_with_another()
    {
        byte[] uki = UkiImage.Build(Inputs());
        var (key, cert) = SigningKey("db");
        byte[] signedBytes = UkiSigner.Sign(uki, key, cert);
        Assert.NotEqual(0u, PeImage.Parse(signedBytes, "signed").CertificateTable.Size);
        Assert.Equal(UkiImage.Read(uki), UkiImage.Read(signedBytes));
        // sbsign's PKCS#7 carries a signing time, so two signatures differ; what they sign (the UKI) does not.
        var image = PeImage.Parse(signedBytes, "signed");
        int linux = (int)image.Sections[^1].RawOffset;
        Assert.Equal(uki.AsSpan(linux).ToArray(), signedBytes.AsSpan(linux, uki.Length - linux).ToArray());

        string path = Path.Combine(dir, "signed.efi");
        File.WriteAllBytes(path, signedBytes);
        var (_, otherCert) = SigningKey("other");
        Assert.Throws<InvalidOperationException>(() => Prerequisites.Run("sbverify", "--cert", otherCert, path));
        Assert.Contains("the stub is signed", Assert.Throws<ImageException>(() => PeImage.Parse(signedBytes, "x").AppendSections([(".x", [1])])).Message);
    }

    [GuestKernelFact(false, "sbsign", "sbattach", "sbverify")]
    public void A_kernel_signed_with_the_db_key_carries_only_that_signature()
    {
        byte[] kernel = File.ReadAllBytes(GuestKernel.Require().KernelPath);
        var (key, cert) = SigningKey("db");
        byte[] signedKernel = UkiSigner.SignKernel(kernel, key, cert);
        Assert.NotEqual(0u, PeImage.Parse(signedKernel, "signed kernel").CertificateTable.Size);
        string path = Path.Combine(dir, "vmlinuz.signed");
        File.WriteAllBytes(path, signedKernel);
        Prerequisites.Run("sbverify", "--cert", cert, path);
        // Debian's signature was removed first: sbverify lists exactly one signature
        Assert.Contains("signature 1", Prerequisites.Run("sbverify", "--list", path));
        Assert.DoesNotContain("signature 2", Prerequisites.Run("sbverify", "--list", path));
        Assert.Contains("not found", Assert.Throws<ImageException>(() => UkiSigner.SignKernel(kernel, Path.Combine(dir, "missing.key"), cert)).Message);
    }

    (string Key, string Cert) SigningKey(string name)
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest($"CN=Tabula test {name}", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        string key = Path.Combine(dir, name + ".key"), pem = Path.Combine(dir, name + ".crt");
        File.WriteAllText(key, rsa.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(pem, cert.ExportCertificatePem());
        return (key, pem);
    }
}

using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Tabula.Testing;
using Tabula.Tpm;

namespace Tabula.Tpm.Tests;

/// <summary>
/// CreatePrimary, ReadPublic, Create/Load, NV_Read, Quote and ActivateCredential against a manufactured swtpm,
/// cross-checked with tpm2-tools and the EK certificates swtpm_setup stored.
/// </summary>
public sealed class KeyTests(ManufacturedTpm made) : IClassFixture<ManufacturedTpm>
{
    const string Tools = "swtpm_setup";

    [ToolsFact("swtpm", Tools, "swtpm_localca", "tpm2_nvread")]
    public void The_ek_certificates_read_over_nv_are_tpm2_nvreads_and_chain_to_the_manufacturer()
    {
        using var tpm = made.Swtpm.Open();
        // swtpm_setup 0.7 writes the RSA 2048 EK certificate only (--ecc would make it ECC instead); the ECC index is absent.
        var absent = Assert.Throws<TpmErrorException>(() => tpm.NvReadPublic(TpmTemplates.EccEkCertificateIndex));
        Assert.Equal(TpmRc.Handle, absent.Code.Base);
        Assert.Equal(1, absent.Code.Handle);
        foreach (uint index in (uint[])[TpmTemplates.RsaEkCertificateIndex])
        {
            var pub = tpm.NvReadPublic(index);
            Assert.Equal(index, pub.Index);
            Assert.True(pub.Written);
            byte[] der = tpm.NvRead(index);
            Assert.Equal(pub.DataSize, der.Length);
            Assert.True(der.Length > TpmLimits.NvReadChunkBytes, "the certificate takes more than one NV_Read");

            string file = made.Scratch($"ek-{index:x8}.der");
            made.Swtpm.Tools("tpm2_nvread", $"0x{index:x8}", "-o", file);
            Assert.Equal(File.ReadAllBytes(file), der);
            using var cert = X509CertificateLoader.LoadCertificate(der);
            using var root = X509Certificate2.CreateFromPem(made.Manufacturer.CertificatePem);
            Assert.Equal(root.SubjectName.RawData, cert.IssuerName.RawData);
        }
    }

    [ToolsFact("swtpm", Tools, "swtpm_localca", "tpm2_readpublic")]
    public void The_rsa_ek_from_the_template_is_the_key_in_its_certificate()
    {
        using var tpm = made.Swtpm.Open();
        var ek = tpm.CreatePrimary(TpmHandles.Endorsement, TpmTemplates.EkRsa2048);
        try
        {
            using var cert = X509CertificateLoader.LoadCertificate(tpm.ReadEkCertificate(TpmAlgorithm.Rsa));
            using var certKey = cert.GetRSAPublicKey()!;
            Assert.Equal(certKey.ExportParameters(false).Modulus, ek.Public.RsaModulus);
            Assert.Equal(TpmTemplates.EkAttributes, ek.Public.Attributes);

            var read = tpm.ReadPublic(ek.Handle);
            Assert.Equal(ek.Name, read.Name);
            Assert.Equal(ek.Public.Encoded, read.Public.Encoded);
            string nameFile = made.Scratch($"ek-{ManufacturedTpm.Nonce()}.name");
            made.Swtpm.Tools("tpm2_readpublic", "-c", $"0x{ek.Handle:x8}", "-n", nameFile);
            Assert.Equal(File.ReadAllBytes(nameFile), ek.Name);
        }
        finally { tpm.FlushContext(ek.Handle); }
    }

    [ToolsFact("swtpm", Tools, "swtpm_localca")]
    public void The_ecc_ek_from_the_template_is_a_p256_key_the_tpm_gives_again()
    {
        using var tpm = made.Swtpm.Open();
        var ek = tpm.CreatePrimary(TpmHandles.Endorsement, TpmTemplates.EkEccP256);
        try
        {
            Assert.Equal(32, ek.Public.EccX.Length);
            using var key = ECDsa.Create(ek.Public.ToEcParameters()); // a point on P-256
            var again = tpm.CreatePrimary(TpmHandles.Endorsement, TpmTemplates.EkEccP256);
            tpm.FlushContext(again.Handle);
            Assert.Equal(ek.Name, again.Name); // same seed, same template, same key
        }
        finally { tpm.FlushContext(ek.Handle); }
    }

    /// <summary>A scheme without a hash (RSAES-PKCS1-v1_5) is written without one: the TPM takes the template, and the
    /// public area it returns is what our writer writes again (found while writing the TpmResponse fuzz target's re-check).</summary>
    [ToolsFact("swtpm", Tools, "swtpm_localca")]
    public void A_public_area_with_a_hashless_scheme_is_written_as_the_tpm_writes_it()
    {
        using var tpm = made.Swtpm.Open();
        var srk = tpm.CreatePrimary(TpmHandles.Owner, TpmTemplates.SrkRsa2048);
        try
        {
            var template = new TpmPublic
            {
                Type = TpmAlgorithm.Rsa, NameAlg = TpmAlgorithm.Sha256, RsaKeyBits = 2048, Scheme = TpmAlgorithm.RsaEs,
                Attributes = TpmObjectAttributes.FixedTpm | TpmObjectAttributes.FixedParent | TpmObjectAttributes.SensitiveDataOrigin
                    | TpmObjectAttributes.UserWithAuth | TpmObjectAttributes.Decrypt,
            };
            var created = tpm.Create(srk.Handle, template);
            Assert.Equal(TpmAlgorithm.RsaEs, created.Public.Scheme);
            Assert.Equal(created.Public.Encoded, (created.Public with { }).Encoded);
        }
        finally
        {
            tpm.FlushContext(srk.Handle);
        }
    }

    [ToolsFact("swtpm", Tools, "swtpm_localca")]
    public void An_ak_created_and_loaded_under_the_srk_quotes_pcrs_with_the_nonce()
    {
        using var tpm = made.Swtpm.Open();
        foreach (var template in (TpmPublic[])[TpmTemplates.AkRsa2048, TpmTemplates.AkEccP256])
        {
            var srk = tpm.CreatePrimary(TpmHandles.Owner, TpmTemplates.SrkRsa2048);
            var created = tpm.Create(srk.Handle, template);
            var ak = tpm.Load(srk.Handle, created);
            tpm.FlushContext(srk.Handle);
            try
            {
                Assert.Equal(TpmTemplates.AkAttributes, ak.Public.Attributes);
                Assert.NotEqual(ak.Name, (ak.Public with { Attributes = TpmObjectAttributes.Sign }).Name); // a copy is re-encoded
                Assert.Equal(ak.Name, tpm.ReadPublic(ak.Handle).Name);
                tpm.PcrExtendSha256(14, SHA256.HashData("wireguard public key"u8));
                byte[] nonce = RandomNumberGenerator.GetBytes(32);
                var selection = PcrSelection.Of(TpmAlgorithm.Sha256, 12, 13, 14);
                var quote = tpm.Quote(ak.Handle, nonce, selection);
                var pcrs = tpm.PcrRead(TpmAlgorithm.Sha256, 12, 13, 14);

                Assert.Equal(nonce, quote.Parsed.ExtraData);
                Assert.Equal(ak.Name[..2], quote.Parsed.QualifiedSigner[..2]); // the AK's qualified name, same nameAlg
                Assert.Equal([selection], quote.Parsed.PcrSelection);
                Assert.Equal(SHA256.HashData([.. pcrs[12], .. pcrs[13], .. pcrs[14]]), quote.Parsed.PcrDigest);
                Assert.True(VerifyInline(ak.Public, quote), $"{template.Type} quote signature");
                Assert.IsType<QuoteResult.Verified>(QuoteVerifier.Verify(ak.Public, quote.Attest, quote.Signature, nonce, pcrs));
                Assert.Equal(QuoteRejection.NonceMismatch, Assert.IsType<QuoteResult.Rejected>(
                    QuoteVerifier.Verify(ak.Public, quote.Attest, quote.Signature, new byte[32], pcrs)).Reason);
                var otherPcrs = pcrs with { Values = new Dictionary<int, byte[]>(pcrs.Values) { [13] = new byte[32].Select(_ => (byte)1).ToArray() } };
                Assert.Equal(QuoteRejection.PcrDigestMismatch, Assert.IsType<QuoteResult.Rejected>(
                    QuoteVerifier.Verify(ak.Public, quote.Attest, quote.Signature, nonce, otherPcrs)).Reason);
                var fewer = pcrs with { Values = pcrs.Values.Where(p => p.Key != 13).ToDictionary() };
                Assert.Equal(QuoteRejection.SelectionMismatch, Assert.IsType<QuoteResult.Rejected>(
                    QuoteVerifier.Verify(ak.Public, quote.Attest, quote.Signature, nonce, fewer)).Reason);
                Assert.Equal(QuoteRejection.NotAnAttestationKey, Assert.IsType<QuoteResult.Rejected>(
                    QuoteVerifier.Verify(ak.Public with { Attributes = ak.Public.Attributes & ~TpmObjectAttributes.Restricted }, quote.Attest, quote.Signature, nonce, pcrs)).Reason);
                byte[] tampered = [.. quote.Attest];
                tampered[^1] ^= 1;
                Assert.False(VerifyInline(ak.Public, quote with { Attest = tampered }));
                Assert.Equal(QuoteRejection.SignatureInvalid, Assert.IsType<QuoteResult.Rejected>(
                    QuoteVerifier.Verify(ak.Public, tampered, quote.Signature, nonce, pcrs)).Reason);
            }
            finally { tpm.FlushContext(ak.Handle); }
        }
    }

    [ToolsFact("swtpm", Tools, "swtpm_localca", "tpm2_makecredential")]
    public void ActivateCredential_returns_the_secret_tpm2_makecredential_made_for_the_ak()
    {
        using var tpm = made.Swtpm.Open();
        var ek = tpm.CreatePrimary(TpmHandles.Endorsement, TpmTemplates.EkRsa2048);
        var srk = tpm.CreatePrimary(TpmHandles.Owner, TpmTemplates.SrkRsa2048);
        var ak = tpm.Load(srk.Handle, tpm.Create(srk.Handle, TpmTemplates.AkRsa2048));
        tpm.FlushContext(srk.Handle);
        try
        {
            byte[] secret = RandomNumberGenerator.GetBytes(32);
            var (blob, encrypted) = ToolsMakeCredential(ek.Public, ak.Name, secret);
            Assert.Equal(secret, tpm.ActivateCredential(ak.Handle, ek.Handle, blob, encrypted));

            // Made for another name: the TPM refuses it (TPM_RC_INTEGRITY on the credential blob).
            byte[] otherName = [.. ak.Name];
            otherName[^1] ^= 1;
            var (wrongBlob, wrongSecret) = ToolsMakeCredential(ek.Public, otherName, secret);
            var e = Assert.Throws<TpmErrorException>(() => tpm.ActivateCredential(ak.Handle, ek.Handle, wrongBlob, wrongSecret));
            Assert.Equal(TpmRc.Integrity, e.Code.Base);
            Assert.Equal(1, e.Code.Parameter);
            // And the policy session the failed call started was flushed: a good one still works.
            Assert.Equal(secret, tpm.ActivateCredential(ak.Handle, ek.Handle, blob, encrypted));
        }
        finally
        {
            tpm.FlushContext(ak.Handle);
            tpm.FlushContext(ek.Handle);
        }
    }

    /// <summary>tpm2_makecredential offline (-T none) for the EK's public area and <paramref name="name"/>.</summary>
    (byte[] Blob, byte[] Secret) ToolsMakeCredential(TpmPublic ek, byte[] name, byte[] secret)
    {
        string id = ManufacturedTpm.Nonce();
        string ekFile = made.Scratch($"ek-{id}.pub"), secretFile = made.Scratch($"secret-{id}"), output = made.Scratch($"cred-{id}");
        byte[] pub = new byte[2 + ek.Encoded.Length];
        BinaryPrimitives.WriteUInt16BigEndian(pub, (ushort)ek.Encoded.Length);
        ek.Encoded.CopyTo(pub, 2);
        File.WriteAllBytes(ekFile, pub);
        File.WriteAllBytes(secretFile, secret);
        Prerequisites.Run("tpm2_makecredential", "-T", "none", "-u", ekFile, "-s", secretFile, "-n", Convert.ToHexStringLower(name), "-o", output);
        return ReadToolsCredential(File.ReadAllBytes(output));
    }

    /// <summary>tpm2-tools' credential file: magic 0xBADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.</summary>
    internal static (byte[] Blob, byte[] Secret) ReadToolsCredential(byte[] file)
    {
        var r = new TpmReader(file);
        Assert.Equal(0xBADCC0DEu, r.ReadUInt32("magic"));
        Assert.Equal(1u, r.ReadUInt32("version"));
        byte[] blob = r.ReadTpm2B(4096, "TPM2B_ID_OBJECT").ToArray();
        byte[] secret = r.ReadTpm2B(4096, "TPM2B_ENCRYPTED_SECRET").ToArray();
        r.ExpectEnd("credential file");
        return (blob, secret);
    }

    static bool VerifyInline(TpmPublic ak, TpmQuote quote)
    {
        if (ak.Type == TpmAlgorithm.Rsa)
        {
            using var rsa = ak.ToRsa();
            return rsa.VerifyData(quote.Attest, quote.Signature.Rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        }
        using var ecdsa = ECDsa.Create(ak.ToEcParameters());
        int size = 32;
        byte[] signature = [.. Pad(quote.Signature.EcdsaR, size), .. Pad(quote.Signature.EcdsaS, size)];
        return ecdsa.VerifyData(quote.Attest, signature, HashAlgorithmName.SHA256);
    }

    static byte[] Pad(byte[] value, int size) => value.Length >= size ? value : [.. new byte[size - value.Length], .. value];
}

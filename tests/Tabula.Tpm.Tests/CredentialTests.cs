using System.Security.Cryptography;
using Tabula.Testing;
using Tabula.Tpm;

namespace Tabula.Tpm.Tests;

/// <summary>MakeCredential in C#, opened by ActivateCredential in a real swtpm.</summary>
public sealed class CredentialTests(ManufacturedTpm made) : IClassFixture<ManufacturedTpm>
{
    [ToolsFact("swtpm", "swtpm_setup", "swtpm_localca")]
    public void A_credential_made_in_csharp_is_activated_by_the_tpm_for_rsa_and_ecc_eks()
    {
        using var tpm = made.Swtpm.Open();
        var srk = tpm.CreatePrimary(TpmHandles.Owner, TpmTemplates.SrkRsa2048);
        var ak = tpm.Load(srk.Handle, tpm.Create(srk.Handle, TpmTemplates.AkRsa2048));
        tpm.FlushContext(srk.Handle);
        try
        {
            foreach (var template in (TpmPublic[])[TpmTemplates.EkRsa2048, TpmTemplates.EkEccP256])
            {
                var ek = tpm.CreatePrimary(TpmHandles.Endorsement, template);
                try
                {
                    byte[] secret = RandomNumberGenerator.GetBytes(32);
                    var made1 = Credential.Make(ek.Public, ak.Name, secret);
                    Assert.Equal(secret, tpm.ActivateCredential(ak.Handle, ek.Handle, made1.CredentialBlob, made1.Secret));

                    // For another name the TPM refuses it; with the blob changed it refuses it too.
                    byte[] otherName = [.. ak.Name];
                    otherName[^1] ^= 1;
                    var wrong = Credential.Make(ek.Public, otherName, secret);
                    Assert.Equal(TpmRc.Integrity, Assert.Throws<TpmErrorException>(
                        () => tpm.ActivateCredential(ak.Handle, ek.Handle, wrong.CredentialBlob, wrong.Secret)).Code.Base);
                    byte[] flipped = [.. made1.CredentialBlob];
                    flipped[^1] ^= 1;
                    Assert.Equal(TpmRc.Integrity, Assert.Throws<TpmErrorException>(
                        () => tpm.ActivateCredential(ak.Handle, ek.Handle, flipped, made1.Secret)).Code.Base);
                }
                finally { tpm.FlushContext(ek.Handle); }
            }
        }
        finally { tpm.FlushContext(ak.Handle); }
    }

    [Fact]
    public void KdfA_matches_the_specification_shape()
    {
        // Two calls with the same inputs agree, different labels differ, and the length is what was asked for.
        byte[] key = new byte[32];
        byte[] a = Credential.KdfA(TpmAlgorithm.Sha256, key, "STORAGE"u8, [1, 2], [], 128);
        Assert.Equal(16, a.Length);
        Assert.Equal(a, Credential.KdfA(TpmAlgorithm.Sha256, key, "STORAGE"u8, [1, 2], [], 128));
        Assert.NotEqual(a, Credential.KdfA(TpmAlgorithm.Sha256, key, "INTEGRITY"u8, [1, 2], [], 128));
        // First block is HMAC(key, 00000001 || "STORAGE\0" || context || 00000080).
        byte[] message = [0, 0, 0, 1, .. "STORAGE"u8, 0, 1, 2, 0, 0, 0, 0x80];
        byte[] expected = HMACSHA256.HashData(key, message);
        Assert.Equal(expected[..16], a);
    }
}

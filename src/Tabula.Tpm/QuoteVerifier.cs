using System.Security.Cryptography;

namespace Tabula.Tpm;

/// <summary>Why a quote was not accepted, in the order they are checked.</summary>
public enum QuoteRejection
{
    /// <summary>The AK is not a fixedTPM, restricted signing key made in the TPM: its signature proves nothing about PCRs.</summary>
    NotAnAttestationKey,
    /// <summary>The signed bytes are not a TPM-made TPMS_ATTEST of a quote.</summary>
    Malformed,
    /// <summary>The signature's scheme or hash is not the AK's.</summary>
    SchemeMismatch,
    /// <summary>The signature does not verify under the AK.</summary>
    SignatureInvalid,
    /// <summary>The qualifying data is not the verifier's (a replayed or foreign quote).</summary>
    NonceMismatch,
    /// <summary>The quote covers other PCRs than the verifier asked about.</summary>
    SelectionMismatch,
    /// <summary>The PCR values given do not hash to the quoted digest (e.g. a tampered event log's replay).</summary>
    PcrDigestMismatch,
}

/// <summary>The outcome of <see cref="QuoteVerifier.Verify"/>: a value, with the parsed quote when it verified.</summary>
public abstract record QuoteResult
{
    /// <summary>Every check passed.</summary>
    public sealed record Verified(TpmAttest Attest) : QuoteResult;

    /// <summary>The first check that failed, and what was seen.</summary>
    public sealed record Rejected(QuoteRejection Reason, string Detail) : QuoteResult;
}

/// <summary>
/// The verifier side of TPM2_Quote, in pure C#: is <c>attest</c> a quote signed by this AK, bound to this nonce,
/// over PCRs whose values are these? It is what the controller runs at enrollment and `tabula relay attest` on a
/// customer's machine, against PCR values replayed from the event log.
/// </summary>
public static class QuoteVerifier
{
    /// <summary>The attributes an attestation key must have.</summary>
    const TpmObjectAttributes Required = TpmObjectAttributes.FixedTpm | TpmObjectAttributes.FixedParent
        | TpmObjectAttributes.SensitiveDataOrigin | TpmObjectAttributes.Restricted | TpmObjectAttributes.Sign;

    /// <summary>
    /// Checks, in order: the AK's attributes, the TPMS_ATTEST format, the signature scheme and signature over the
    /// exact <paramref name="attest"/> bytes, the qualifying data against <paramref name="nonce"/>, the selection
    /// against <paramref name="pcrs"/> (one SHA-256 bank), and the digest of those PCR values against the quoted one.
    /// </summary>
    public static QuoteResult Verify(TpmPublic ak, ReadOnlySpan<byte> attest, TpmSignature signature, ReadOnlySpan<byte> nonce,
        PcrValues pcrs)
    {
        if ((ak.Attributes & Required) != Required || (ak.Attributes & TpmObjectAttributes.Decrypt) != 0)
            return new QuoteResult.Rejected(QuoteRejection.NotAnAttestationKey, $"AK attributes {ak.Attributes}");
        TpmAttest parsed;
        try
        {
            parsed = TpmAttest.ParseQuote(attest);
        }
        catch (TpmFormatException e)
        {
            return new QuoteResult.Rejected(QuoteRejection.Malformed, e.Message);
        }
        if (signature.Algorithm != ak.Scheme || signature.Hash != ak.SchemeHash)
            return new QuoteResult.Rejected(QuoteRejection.SchemeMismatch, $"signature {signature.Algorithm}/{signature.Hash}, AK {ak.Scheme}/{ak.SchemeHash}");
        if (!SignatureVerifies(ak, attest, signature))
            return new QuoteResult.Rejected(QuoteRejection.SignatureInvalid, "the AK's signature does not verify");
        if (!CryptographicOperations.FixedTimeEquals(parsed.ExtraData, nonce))
            return new QuoteResult.Rejected(QuoteRejection.NonceMismatch, $"quote qualifying data {Convert.ToHexStringLower(parsed.ExtraData)}");
        var wanted = new PcrSelection(pcrs.Bank, Mask(pcrs.Values.Keys));
        if (parsed.PcrSelection.Count != 1 || parsed.PcrSelection[0] != wanted)
            return new QuoteResult.Rejected(QuoteRejection.SelectionMismatch, "the quote covers other PCRs than those given");
        var concatenated = new List<byte>();
        foreach (int pcr in wanted.Indexes)
            concatenated.AddRange(pcrs[pcr]);
        byte[] digest = TpmCrypto.Hash(signature.Hash, concatenated.ToArray());
        if (!CryptographicOperations.FixedTimeEquals(digest, parsed.PcrDigest))
            return new QuoteResult.Rejected(QuoteRejection.PcrDigestMismatch, $"PCR values hash to {Convert.ToHexStringLower(digest)}, quoted {Convert.ToHexStringLower(parsed.PcrDigest)}");
        return new QuoteResult.Verified(parsed);
    }

    static uint Mask(IEnumerable<int> pcrs)
    {
        uint mask = 0;
        foreach (int pcr in pcrs)
            if (pcr is >= 0 and < 32)
                mask |= 1u << pcr;
        return mask;
    }

    static bool SignatureVerifies(TpmPublic ak, ReadOnlySpan<byte> attest, TpmSignature signature)
    {
        var hash = TpmCrypto.HashName(signature.Hash);
        switch (signature.Algorithm)
        {
            case TpmAlgorithm.RsaSsa or TpmAlgorithm.RsaPss when ak.Type == TpmAlgorithm.Rsa:
                using (var rsa = ak.ToRsa())
                    return rsa.VerifyData(attest, signature.Rsa, hash,
                        signature.Algorithm == TpmAlgorithm.RsaSsa ? RSASignaturePadding.Pkcs1 : RSASignaturePadding.Pss);
            case TpmAlgorithm.Ecdsa when ak.Type == TpmAlgorithm.Ecc:
                int size = TpmCrypto.CoordinateSize(ak.Curve);
                if (signature.EcdsaR.Length > size || signature.EcdsaS.Length > size)
                    return false;
                using (var ecdsa = ECDsa.Create(ak.ToEcParameters()))
                    return ecdsa.VerifyData(attest, [.. TpmCrypto.LeftPad(signature.EcdsaR, size), .. TpmCrypto.LeftPad(signature.EcdsaS, size)], hash);
            default:
                return false;
        }
    }
}

using System.Security.Cryptography;

namespace Tabula.Attestation.Tpm;

/// <summary>
/// A TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE (part 2, 10.12.12) as a verifier reads it: who signed (qualifiedSigner), the
/// verifier's qualifying data (extraData), the clock, and the quoted PCR selection with the digest of their values.
/// </summary>
public sealed record QuoteInfo(byte[] QualifiedSigner, byte[] ExtraData, ulong Clock, uint ResetCount, uint RestartCount,
    IReadOnlyList<(ushort Hash, IReadOnlyList<int> Pcrs)> Selection, byte[] PcrDigest)
{
    /// <summary>Reads a quote's TPMS_ATTEST; anything but a TPM-generated quote is refused.</summary>
    public static QuoteInfo Parse(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > TpmVerifierLimits.MaxStructure)
            throw new TpmFormatException($"TPMS_ATTEST: {bytes.Length} bytes, at most {TpmVerifierLimits.MaxStructure}");
        var r = new TpmBytes(bytes, "TPMS_ATTEST");
        if (r.U32("magic") != TpmAlg.GeneratedMagic) throw new TpmFormatException("TPMS_ATTEST: magic is not TPM_GENERATED_VALUE");
        if (r.U16("type") != TpmAlg.AttestQuote) throw new TpmFormatException("TPMS_ATTEST: not a quote (TPM_ST_ATTEST_QUOTE)");
        byte[] signer = r.Sized("qualifiedSigner", TpmVerifierLimits.MaxDigest).ToArray();
        byte[] extra = r.Sized("extraData", TpmVerifierLimits.MaxData).ToArray();
        ulong clock = r.U64("clockInfo.clock");
        uint resets = r.U32("clockInfo.resetCount");
        uint restarts = r.U32("clockInfo.restartCount");
        r.U8("clockInfo.safe");
        r.U64("firmwareVersion");
        uint count = r.U32("pcrSelect.count");
        if (count > 4) throw new TpmFormatException($"TPMS_ATTEST: {count} PCR banks selected, at most 4");
        var selection = new List<(ushort, IReadOnlyList<int>)>();
        for (int i = 0; i < count; i++)
        {
            ushort hash = r.U16("pcrSelect.hash");
            byte size = r.U8("pcrSelect.sizeofSelect");
            if (size > 4) throw new TpmFormatException($"TPMS_ATTEST: a PCR select of {size} bytes, at most 4");
            var map = r.Take(size, "pcrSelect.pcrSelect");
            var pcrs = new List<int>();
            for (int pcr = 0; pcr < size * 8; pcr++)
                if ((map[pcr / 8] & (1 << (pcr % 8))) != 0) pcrs.Add(pcr);
            selection.Add((hash, pcrs));
        }
        byte[] digest = r.Sized("pcrDigest", TpmVerifierLimits.MaxDigest).ToArray();
        r.End();
        return new QuoteInfo(signer, extra, clock, resets, restarts, selection, digest);
    }

    /// <summary>
    /// Whether <paramref name="signature"/> (TPMT_SIGNATURE: RSASSA, RSAPSS or ECDSA with SHA-256/384) is <paramref name="ak"/>'s
    /// over <paramref name="attest"/>. False for a malformed signature or one by another key.
    /// </summary>
    public static bool VerifySignature(TpmPublicArea ak, ReadOnlySpan<byte> attest, ReadOnlySpan<byte> signature, out string why)
    {
        try
        {
            if (signature.Length > TpmVerifierLimits.MaxStructure) throw new TpmFormatException("TPMT_SIGNATURE: too large");
            var r = new TpmBytes(signature, "TPMT_SIGNATURE");
            ushort alg = r.U16("sigAlg");
            ushort hash = r.U16("hash");
            var name = hash switch
            {
                TpmAlg.Sha256 => HashAlgorithmName.SHA256,
                TpmAlg.Sha384 => HashAlgorithmName.SHA384,
                _ => throw new TpmFormatException($"TPMT_SIGNATURE: hash 0x{hash:x4} is not SHA-256 or SHA-384"),
            };
            bool ok;
            switch (alg)
            {
                case TpmAlg.RsaSsa or TpmAlg.RsaPss:
                {
                    var sig = r.Sized("signature", TpmVerifierLimits.MaxRsaBytes);
                    r.End();
                    using var rsa = ak.ToRsa();
                    ok = rsa.VerifyData(attest, sig, name, alg == TpmAlg.RsaSsa ? RSASignaturePadding.Pkcs1 : RSASignaturePadding.Pss);
                    break;
                }
                case TpmAlg.Ecdsa:
                {
                    var sr = r.Sized("signatureR", TpmVerifierLimits.MaxEccCoordinate);
                    var ss = r.Sized("signatureS", TpmVerifierLimits.MaxEccCoordinate);
                    r.End();
                    using var ecdsa = ak.ToEcdsa();
                    int size = (ecdsa.KeySize + 7) / 8;
                    if (sr.Length > size || ss.Length > size) throw new TpmFormatException("TPMT_SIGNATURE: an ECDSA value larger than the curve");
                    var raw = new byte[size * 2];
                    sr.CopyTo(raw.AsSpan(size - sr.Length));
                    ss.CopyTo(raw.AsSpan(2 * size - ss.Length));
                    ok = ecdsa.VerifyData(attest, raw, name, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
                    break;
                }
                default:
                    throw new TpmFormatException($"TPMT_SIGNATURE: algorithm 0x{alg:x4} is not RSASSA, RSAPSS or ECDSA");
            }
            why = ok ? "" : "the signature does not verify with the AK";
            return ok;
        }
        catch (Exception e) when (e is TpmFormatException or CryptographicException)
        {
            why = e.Message;
            return false;
        }
    }

    /// <summary>The digest a TPM computes over PCR values for this selection: H(values in selection order), SHA-256.</summary>
    public static byte[] PcrDigestOf(IEnumerable<byte[]> values)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (byte[] v in values) hash.AppendData(v);
        return hash.GetHashAndReset();
    }
}

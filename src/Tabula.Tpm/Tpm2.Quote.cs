namespace Tabula.Tpm;

/// <summary>
/// A quote as the TPM returned it: <see cref="Attest"/> is the marshaled TPMS_ATTEST exactly as signed (verify over
/// these bytes, never over a re-encoding), <see cref="Parsed"/> its fields, <see cref="Signature"/> the AK's signature.
/// </summary>
public sealed record TpmQuote(byte[] Attest, TpmAttest Parsed, TpmSignature Signature);

public sealed partial class Tpm2
{
    /// <summary>
    /// TPM2_Quote with the attestation key <paramref name="signingKey"/> (USER role, empty password) over
    /// <paramref name="pcrs"/>, binding <paramref name="qualifyingData"/> (at most 64 bytes: a verifier's nonce or
    /// a hash of one). The key's own scheme is used (inScheme TPM_ALG_NULL).
    /// </summary>
    public TpmQuote Quote(uint signingKey, ReadOnlySpan<byte> qualifyingData, params ReadOnlySpan<PcrSelection> pcrs)
    {
        if (qualifyingData.Length > TpmLimits.MaxDigestBytes)
            throw new ArgumentException("qualifying data is at most 64 bytes", nameof(qualifyingData));
        byte[] data = qualifyingData.ToArray();
        var selection = pcrs.ToArray();
        byte[] parameters = Execute(TpmCommandCode.Quote, 1, (ref TpmWriter w) =>
        {
            w.WriteUInt32(signingKey);
            WritePasswordSessions(ref w, EmptyPassword);
            w.WriteTpm2B(data);
            w.WriteUInt16((ushort)TpmAlgorithm.Null);
            PcrSelection.WriteList(ref w, selection);
        });
        return ParseQuote(parameters);
    }

    /// <summary>Parses TPM2_Quote's response parameters: quoted (TPM2B_ATTEST) and signature.</summary>
    internal static TpmQuote ParseQuote(ReadOnlySpan<byte> parameters)
    {
        var r = new TpmReader(parameters);
        byte[] attest = r.ReadTpm2B(TpmLimits.MaxTpm2BBytes, "TPM2B_ATTEST").ToArray();
        var signature = TpmSignature.Read(ref r);
        r.ExpectEnd("TPM2_Quote response");
        return new TpmQuote(attest, TpmAttest.ParseQuote(attest), signature);
    }
}

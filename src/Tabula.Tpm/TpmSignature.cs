namespace Tabula.Tpm;

/// <summary>
/// TPMT_SIGNATURE for the schemes an attestation key uses (part 2, 11.3.4): RSASSA or RSAPSS (one big-endian
/// signature), ECDSA (r and s).
/// </summary>
public sealed record TpmSignature(TpmAlgorithm Algorithm, TpmAlgorithm Hash, byte[] Rsa, byte[] EcdsaR, byte[] EcdsaS)
{
    /// <summary>Reads TPMT_SIGNATURE; TPM_ALG_NULL and schemes other than RSASSA, RSAPSS and ECDSA are refused.</summary>
    public static TpmSignature Read(ref TpmReader r)
    {
        var algorithm = (TpmAlgorithm)r.ReadUInt16("TPMT_SIGNATURE.sigAlg");
        if (algorithm is not (TpmAlgorithm.RsaSsa or TpmAlgorithm.RsaPss or TpmAlgorithm.Ecdsa))
            TpmFormatException.Throw(TpmFormatError.UnsupportedAlgorithm, "TPMT_SIGNATURE.sigAlg");
        var hash = (TpmAlgorithm)r.ReadUInt16("TPMT_SIGNATURE.hash");
        if (algorithm == TpmAlgorithm.Ecdsa)
        {
            byte[] sr = r.ReadTpm2B(TpmLimits.MaxEccKeyBytes, "TPMS_SIGNATURE_ECDSA.signatureR").ToArray();
            byte[] ss = r.ReadTpm2B(TpmLimits.MaxEccKeyBytes, "TPMS_SIGNATURE_ECDSA.signatureS").ToArray();
            return new TpmSignature(algorithm, hash, [], sr, ss);
        }
        byte[] sig = r.ReadTpm2B(TpmLimits.MaxRsaKeyBytes, "TPMS_SIGNATURE_RSA.sig").ToArray();
        return new TpmSignature(algorithm, hash, sig, [], []);
    }

    /// <summary>Parses a TPMT_SIGNATURE that fills <paramref name="bytes"/>.</summary>
    public static TpmSignature Parse(ReadOnlySpan<byte> bytes)
    {
        var r = new TpmReader(bytes);
        var s = Read(ref r);
        r.ExpectEnd("TPMT_SIGNATURE");
        return s;
    }

    /// <summary>Writes TPMT_SIGNATURE (for evidence sent over the wire).</summary>
    public void WriteTo(ref TpmWriter w)
    {
        w.WriteUInt16((ushort)Algorithm);
        w.WriteUInt16((ushort)Hash);
        if (Algorithm == TpmAlgorithm.Ecdsa)
        {
            w.WriteTpm2B(EcdsaR);
            w.WriteTpm2B(EcdsaS);
        }
        else
            w.WriteTpm2B(Rsa);
    }

    /// <summary>The marshaled TPMT_SIGNATURE.</summary>
    public byte[] ToBytes()
    {
        var buffer = new byte[TpmLimits.MaxMessageBytes];
        var w = new TpmWriter(buffer);
        WriteTo(ref w);
        return w.Written.ToArray();
    }
}
